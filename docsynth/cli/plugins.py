"""Commands `docsynth plugins list|install|uninstall` (docsynth/plugins.py is the host)."""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys

import typer
from rich.table import Table

from docsynth import options, plugins
from docsynth.cli.common import Group, JsonOpt, emit, print_table
from docsynth.errors import DocsynthError

plugins_app = typer.Typer(cls=Group, no_args_is_help=True, help="List, install and remove plugins.")


def register(app: typer.Typer) -> None:
    app.add_typer(plugins_app, name="plugins")


@plugins_app.command("list")
def plugins_list(as_json: bool = JsonOpt) -> None:
    """Every loaded plugin: version, hooks, what it provides, errors."""
    infos = [p.as_dict() for p in plugins.host().plugins()]
    if as_json:
        registered = {kind: plugins.host().all(kind) for kind in {k for i in infos for k in i["provides"]}}
        for info in infos:  # each plugin's option schema (null: a free-form mapping it checks itself)
            info["options"] = {kind: {name: options.schema(registered[kind].get(name)) for name in names}
                               for kind, names in info["provides"].items()}
        emit(infos, True)
        return

    table = Table("plugin", "version", "provides", "errors")
    for info in infos:
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in info["provides"].items())
        if "register_commands" in info["hooks"]:
            provides = (provides + "; " if provides else "") + "commands"
        table.add_row(info["name"], info["version"] or "", provides, "\n".join(info["errors"]))
    print_table(table)


def _pip(args: list[str]) -> None:
    try:
        # a probe: some venvs (uv) have no pip
        import pip  # noqa: F401
    except ImportError:
        raise DocsynthError("pip is not available in this Python environment (a uv venv?); "
                            "install plugins with your package manager, e.g. 'uv pip install PKG'") from None
    code = subprocess.call([sys.executable, "-m", "pip", *args])
    if code:
        raise DocsynthError(f"pip {args[0]} failed with exit code {code}", exit_code=code)


@plugins_app.command("install")
def plugins_install(packages: list[str] = typer.Argument(..., help="Packages (pip requirement specs or paths)."),
                    editable: bool = typer.Option(False, "-e", "--editable", help="Editable install.")) -> None:
    """Install plugin packages with this interpreter's pip."""
    args = ["install"] + (["-e"] if editable else []) + packages
    _pip(args)


@plugins_app.command("uninstall")
def plugins_uninstall(packages: list[str] = typer.Argument(..., help="Distribution names.")) -> None:
    """Uninstall plugin packages with this interpreter's pip."""
    for name in packages:
        _check_plugin_distribution(name)
    _pip(["uninstall", "-y", *packages])


def _check_plugin_distribution(name: str) -> None:
    """Only installed distributions that provide docsynth plugins may be removed here, and
    never docsynth itself (pip -y would remove it without asking)."""
    canonical = re.sub(r"[-_.]+", "-", name).lower()
    if canonical == "docsynth":
        raise DocsynthError("docsynth: that is docsynth itself, not a plugin; to remove it run: "
                            f"{sys.executable} -m pip uninstall docsynth")
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        raise DocsynthError(f"{name}: not installed; 'docsynth plugins list' shows the installed plugins") from None
    if not any(ep.group == plugins.GROUP for ep in dist.entry_points):
        raise DocsynthError(f"{name}: not a docsynth plugin (it has no 'docsynth' entry points); "
                            "use pip uninstall to remove other packages")
