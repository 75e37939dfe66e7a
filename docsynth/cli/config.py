"""Command `docsynth config show` (docsynth/config.py loads the config, docsynth/schema.py types it)."""

from __future__ import annotations

from pathlib import Path

import typer

from docsynth import config as config_mod
from docsynth import options
from docsynth.cli.common import ConfigOpt, Group, JsonOpt, emit, load_config

config_app = typer.Typer(cls=Group, no_args_is_help=True, help="Inspect the effective run config.")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Print the effective config (defaults, file, nothing else)."""
    cfg = load_config(config).model_dump()
    human = config_mod.dump(cfg).rstrip()
    effective = options.effective(cfg)
    if effective:  # what the plugins will see, declared defaults filled in (comments: still valid YAML)
        lines = config_mod.dump(effective).rstrip().splitlines()
        human += "\n\n# plugin options in effect (declared defaults filled in):\n" + "\n".join(f"#   {x}" for x in lines)
    emit(cfg, as_json, human)
