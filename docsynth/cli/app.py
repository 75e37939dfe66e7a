"""The `docsynth` command line.

Results go to stdout (``--json`` for machines), progress and problems to stderr. A
:class:`DocsynthError` becomes one line on stderr and a non-zero exit, never a traceback.
Heavy modules (torch) are imported inside the commands that need them.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from docsynth import __version__, outputs, plugins
from docsynth import config as config_mod
from docsynth.errors import DocsynthError, Incomplete
from docsynth.progress import progress_bar

ConfigOpt = typer.Option(None, "--config", "-c", help="Run config (default: ./docsynth.yaml if present).",
                         exists=False, dir_okay=False)
JsonOpt = typer.Option(False, "--json", help="Print the result as JSON on stdout.")


def _plain_help(param: Any) -> Any:
    """Help that reads as written: a flag takes no value, so it shows no ``<bool>``; an argument
    with a metavar shows that metavar alone, not ``{METAVAR}...`` and ``<list[Path]>``."""
    if getattr(param, "is_flag", False):
        param.display_type_rich = lambda ctx: None
    elif getattr(param, "param_type_name", "") == "argument" and param.metavar:
        param.display_type_rich = lambda ctx: None
        param._usage_display_name = lambda: param.metavar
        param._rich_display_name = lambda: param.metavar
    return param


class _Group(TyperGroup):
    """Turns DocsynthError (raised anywhere below) into one line on stderr and an exit code."""

    def get_command(self, ctx: Any, name: str) -> Any:
        command = super().get_command(ctx, name)
        if command is not None and command.help and not command.short_help:
            # The command list shows each help's first paragraph, and Typer's rich mode keeps its
            # line breaks: docstrings wrapped at 100 columns came out as ragged half-lines.
            command.short_help = " ".join(command.help.split("\n\n")[0].split())
        if command is not None and not getattr(command, "_plain", False):
            setattr(command, "_plain", True)  # noqa: B010
            listed = command.get_params  # the --help option is added there, not to .params

            def get_params(ctx: Any) -> list:
                return [_plain_help(p) for p in listed(ctx)]

            setattr(command, "get_params", get_params)  # noqa: B010
        return command

    def get_params(self, ctx: Any) -> list:
        return [_plain_help(p) for p in super().get_params(ctx)]

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except DocsynthError as exc:
            for line in str(exc).splitlines() or ["error"]:
                typer.echo(f"docsynth: error: {line}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except ModuleNotFoundError as exc:
            # The base install scans without torch; a command that trains or reads a .pt says
            # what to install instead of a traceback.
            if (exc.name or "").split(".")[0] not in ("torch", "torchvision"):
                raise
            from docsynth.scan.scanner import TRAIN_EXTRA

            typer.echo(f"docsynth: error: this command needs PyTorch ({exc.name} is not installed): "
                       f"{TRAIN_EXTRA}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            INTERRUPTS.pressed = True  # the work has stopped: another Ctrl-C ends the process at once
            INTERRUPTS.tell()
            raise typer.Exit(130) from None
        except OSError as exc:  # full disk, permissions, a path under a file: name the path
            typer.echo(f"docsynth: error: {os_error_line(exc)}", err=True)
            raise typer.Exit(1) from None


INTERRUPTED = "docsynth: interrupted; rerun the same command to resume"


class Interrupts:
    """Ctrl-C (SIGINT) while a command runs. The first press raises KeyboardInterrupt, so the
    command stops cleanly, keeps its finished work and says so in one line (exit 130). A second
    press ends the process at once, with the same line (written once) and the same exit code:
    it may land anywhere, also while the first one is being handled, where a second
    KeyboardInterrupt would print a traceback or leave pool threads half-stopped. Worker
    processes end by themselves when their parent is gone (docsynth/workers.py)."""

    def __init__(self) -> None:
        self.pressed = False
        self.told = False

    def handler(self, signum: int, frame: Any) -> None:
        if self.pressed:
            if not self.told:
                self.told = True
                os.write(2, (INTERRUPTED + "\n").encode())
            os._exit(130)
        self.pressed = True
        raise KeyboardInterrupt

    def tell(self) -> None:
        if not self.told:
            self.told = True
            typer.echo(INTERRUPTED, err=True)


INTERRUPTS = Interrupts()


def os_error_line(exc: OSError) -> str:
    """One line for an operating-system error: the path, what happened, what to do."""
    import errno

    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    hint = {errno.ENOSPC: "free some space, then rerun the same command (finished work is kept)",
            errno.EDQUOT: "free some space, then rerun the same command (finished work is kept)",
            errno.EACCES: "check the permissions or choose another path",
            errno.EROFS: "choose a writable path",
            errno.ENOTDIR: "a part of the path is a file; choose another path"}.get(exc.errno or 0, "")
    return f"{where}{what}" + (f"; {hint}" if hint else "")


app = typer.Typer(cls=_Group, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Synthetic training data and models for document scanners.")
plugins_app = typer.Typer(cls=_Group, no_args_is_help=True, help="List, install and remove plugins.")
config_app = typer.Typer(cls=_Group, no_args_is_help=True, help="Inspect the effective run config.")
app.add_typer(plugins_app, name="plugins")
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"docsynth {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Show the version and exit.")) -> None:
    plugins.host().report_errors()


def emit(result: Any, as_json: bool, human: str | None = None) -> None:
    """Print a command's result on stdout."""
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        typer.echo(human if human is not None else json.dumps(result, indent=2, default=str))


def print_table(table: Any) -> None:
    """A rich table on stdout. In a terminal it fits the window; piped or redirected, rich would
    cut it at 80 columns, so it gets whatever width its cells need (and --json has it all)."""
    from rich.console import Console

    piped = not sys.stdout.isatty()
    Console(width=100_000 if piped else None, soft_wrap=piped).print(table)


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> config_mod.RunConfig:
    return config_mod.load(path, overrides)


# ---------------------------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------------------------


def _label_list(text: str | None) -> list[str] | None:
    """``--labels dewarp,text`` as a list (checked with the rest of the config); 'none' -> []."""
    if text is None:
        return None
    return [] if text.strip() in ("", "none") else [p.strip() for p in text.split(",") if p.strip()]


@app.command()
def generate(
    documents: Path | None = typer.Option(None, help="Prepared documents folder or any folder of page images."),
    backgrounds: Path | None = typer.Option(None, help="Folder of background images."),
    per_document: int | None = typer.Option(None, "--per-document", "-k", help="Composites per document."),
    count: int | None = typer.Option(None, help="Total samples (default: documents x per-document)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output dataset folder."),
    seed: int | None = typer.Option(None, help="Master seed."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Worker processes."),
    image_format: str | None = typer.Option(None, "--image-format", help="jpg or png."),
    compositor: str | None = typer.Option(None, help="Compositor plugin."),
    executor: str | None = typer.Option(None, help="Executor plugin (local, ray, ...)."),
    address: str | None = typer.Option(None, help="Ray cluster for --executor ray: auto or HOST:PORT."),
    shard_format: str | None = typer.Option(None, "--shard-format", help="files or tar (WebDataset shards)."),
    labels: str | None = typer.Option(None, "--labels", help="Labels beyond the page, comma-separated: dewarp, "
                                         "text (dewarp/<id>.npz, text/<id>.jsonl); 'none' for none."),
    force: bool = typer.Option(False, "--force", help="Replace a dataset made with another config."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Composite documents onto backgrounds: images/, masks/, manifest.jsonl, run.yaml."""
    from docsynth.generate.shards import generate as run_generate

    written = load_config(config, {"generate.executor": executor}).generate
    if address is not None and written.executor == "local":
        raise DocsynthError("--address: names a Ray cluster; add --executor ray")
    # Options belong to the compositor they were written for (the shipped docsynth.yaml's are
    # realistic's): --compositor X runs X with its own defaults.
    other_compositor = compositor is not None and compositor != written.compositor and written.compositor_options
    if other_compositor:
        typer.echo(f"docsynth: note: generate.compositor_options are for {written.compositor!r}; --compositor "
                   f"{compositor} runs with its defaults", err=True)
    cfg = load_config(config, {
        "seed": seed, "generate.documents": _s(documents), "generate.backgrounds": _s(backgrounds),
        "generate.per_document": per_document, "generate.count": count, "generate.out": _s(out),
        "generate.workers": workers, "generate.image_format": image_format,
        "generate.compositor": compositor, "generate.executor": executor,
        "generate.executor_options.address": address, "generate.shard_format": shard_format,
        "generate.compositor_options": {} if other_compositor else None,
        "generate.labels": _label_list(labels),
    })
    gen = cfg.generate
    outputs.check_folder(gen.out)
    outputs.refuse_overlap(gen.out, [gen.documents, gen.backgrounds])  # --force clears images/
    outputs.refuse_inside(gen.out, [gen.documents, gen.backgrounds])  # listed recursively
    with progress_bar("generate") as bar:
        summary = run_generate(cfg, force=force, progress=bar.advance, on_start=bar.start,
                               note=lambda msg: typer.echo(f"docsynth: note: {msg}", err=True))
    human = (f"wrote {summary['written']} samples ({summary['resumed']} already done, "
             f"{summary['failed']} failed) to {summary['out']} in {summary['seconds']} s"
             + (f"; {len(summary['skipped'])} unreadable files skipped (listed above)" if summary["skipped"] else ""))
    emit(summary, as_json, human)
    if not summary["complete"]:
        from docsynth.generate.shards import failure_line

        raise Incomplete(failure_line(summary))


def _s(path: Path | None) -> str | None:
    return None if path is None else str(path)


# ---------------------------------------------------------------------------------------------
# plugins
# ---------------------------------------------------------------------------------------------


@plugins_app.command("list")
def plugins_list(as_json: bool = JsonOpt) -> None:
    """Every loaded plugin: version, hooks, what it provides, errors."""
    infos = [p.as_dict() for p in plugins.host().plugins()]
    if as_json:
        from docsynth import options

        registered = {kind: plugins.host().all(kind) for kind in {k for i in infos for k in i["provides"]}}
        for info in infos:  # each plugin's option schema (null: a free-form mapping it checks itself)
            info["options"] = {kind: {name: options.schema(registered[kind].get(name)) for name in names}
                               for kind, names in info["provides"].items()}
        emit(infos, True)
        return
    from rich.table import Table

    table = Table("plugin", "version", "provides", "errors")
    for info in infos:
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in info["provides"].items())
        if "register_commands" in info["hooks"]:
            provides = (provides + "; " if provides else "") + "commands"
        table.add_row(info["name"], info["version"] or "", provides, "\n".join(info["errors"]))
    print_table(table)


def _pip(args: list[str]) -> None:
    try:
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
    import importlib.metadata as md
    import re

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


# ---------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------


@config_app.command("show")
def config_show(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Print the effective config (defaults, file, nothing else)."""
    from docsynth import options

    cfg = load_config(config).model_dump()
    human = config_mod.dump(cfg).rstrip()
    effective = options.effective(cfg)
    if effective:  # what the plugins will see, declared defaults filled in (comments: still valid YAML)
        lines = config_mod.dump(effective).rstrip().splitlines()
        human += "\n\n# plugin options in effect (declared defaults filled in):\n" + "\n".join(f"#   {x}" for x in lines)
    emit(cfg, as_json, human)


# Each stage's commands live in their own module.
for _name in ("sources", "backgrounds", "dataset", "train", "scan", "run"):
    importlib.import_module(f"docsynth.cli.{_name}").register(app)

plugins.host().add_commands(app)


def main(argv: list[str] | None = None) -> None:
    global INTERRUPTS
    INTERRUPTS = Interrupts()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        app(args=argv, prog_name="docsynth")
        return
    previous = signal.signal(signal.SIGINT, INTERRUPTS.handler)
    code: Any = 0
    try:
        app(args=argv, prog_name="docsynth")
    except SystemExit as exc:
        code = exc.code
        raise
    finally:
        if not INTERRUPTS.pressed:
            signal.signal(signal.SIGINT, previous)
        elif argv is None:  # the program itself (not a caller's main([...])), stopped by Ctrl-C
            # The work has stopped and said so. Leave now: the interpreter's shutdown hands
            # SIGINT back to its default action, and a second press landing there would kill
            # the process by signal instead of the exit 130 it was promised.
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            os._exit(code if isinstance(code, int) else 130)
