"""The `docsynth` command line: the Typer app, assembled from one module per package.

Each command sits in ``docsynth/cli/<package>.py``, named after the package (or core module)
it drives: ``cli/generate.py`` runs ``docsynth/generate/``, ``cli/evaluate.py`` runs
``docsynth/evaluate/``, and so on. What they share (options, output, the error contract) is
``cli/common.py``. Results go to stdout (``--json`` for machines), progress and problems to
stderr. Heavy modules (torch) are imported inside the commands that need them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any

import typer

from docsynth import __version__, plugins
from docsynth.cli import (
    backgrounds,
    common,
    config,
    dataset,
    evaluate,
    generate,
    report,
    run,
    scan,
    sources,
    train,
)
from docsynth.cli import plugins as plugins_cli
from docsynth.cli.common import Interrupts

app = typer.Typer(cls=common.Group, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Synthetic training data and models for document scanners.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"docsynth {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Show the version and exit.")) -> None:
    plugins.host().report_errors()


# Pipeline order: `docsynth --help` lists the commands in it (groups after the commands).
for _module in (plugins_cli, config, generate, sources, backgrounds, dataset, train, scan, evaluate, run, report):
    _module.register(app)

plugins.host().add_commands(app)


def main(argv: list[str] | None = None) -> None:
    interrupts = common.INTERRUPTS = Interrupts()  # a fresh count of Ctrl-C presses per call
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        app(args=argv, prog_name="docsynth")
        return
    previous = signal.signal(signal.SIGINT, interrupts.handler)
    code: Any = 0
    try:
        app(args=argv, prog_name="docsynth")
    except SystemExit as exc:
        code = exc.code
        raise
    finally:
        if not interrupts.pressed:
            signal.signal(signal.SIGINT, previous)
        elif argv is None:  # the program itself (not a caller's main([...])), stopped by Ctrl-C
            # The work has stopped and said so. Leave now: the interpreter's shutdown hands
            # SIGINT back to its default action, and a second press landing there would kill
            # the process by signal instead of the exit 130 it was promised.
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            os._exit(code if isinstance(code, int) else 130)
