"""What every command shares: the --config and --json options, results on stdout, and the
error contract (a DocsynthError or a usage error becomes one ``docsynth: error:`` line on stderr
and an exit status, never a traceback; Ctrl-C exits 130).

The commands live in one module per package they drive (``cli/<package>.py``); ``cli/app``
assembles them.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

import typer
import yaml
from rich.console import Console
from typer.core import TyperGroup

try:  # Typer 0.2x parses with its own copy of click, raising its own exception classes
    from typer._click import exceptions as click_errors
except ImportError:  # older Typer: click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]

from docsynth import config as config_mod
from docsynth.errors import DocsynthError
from docsynth.limits import MAX_SIDE
from docsynth.scan.scanner import TRAIN_EXTRA

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


class Group(TyperGroup):
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

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click_errors.UsageError as exc:
            raise _usage_exit(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except click_errors.UsageError as exc:
            raise _usage_exit(exc) from None
        except DocsynthError as exc:
            for line in str(exc).splitlines() or ["error"]:
                typer.echo(f"docsynth: error: {line}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except ModuleNotFoundError as exc:
            # The base install scans without torch; a command that trains or reads a .pt says
            # what to install instead of a traceback.
            if (exc.name or "").split(".")[0] not in ("torch", "torchvision"):
                raise

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


def usage_line(exc: click_errors.UsageError) -> str:
    """A usage error that Typer found (a value out of range, not one of the choices, a missing
    option) as the one line every docsynth error is: the option first, then what is wrong."""
    message = exc.format_message()
    param = getattr(exc, "param", None)
    if (isinstance(exc, click_errors.BadParameter) and not isinstance(exc, click_errors.MissingParameter)
            and param is not None):
        name = param.opts[0] if param.param_type_name == "option" else (param.metavar or (param.name or "").upper())
        # Typer checks values through pydantic, whose messages start with their category
        what = exc.message.removeprefix("Value error, ")
        message = f"{name}: {what[:1].lower()}{what[1:]}"
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return " ".join(message.split()).rstrip(".") + where


def _usage_exit(exc: click_errors.UsageError) -> Exception:
    if isinstance(exc, click_errors.NoArgsIsHelpError):  # a group called bare: its help, as click shows it
        return exc
    typer.echo(f"docsynth: error: {usage_line(exc)}", err=True)
    return typer.Exit(2)


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
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    hint = {errno.ENOSPC: "free some space, then rerun the same command (finished work is kept)",
            errno.EDQUOT: "free some space, then rerun the same command (finished work is kept)",
            errno.EACCES: "check the permissions or choose another path",
            errno.EROFS: "choose a writable path",
            errno.ENOTDIR: "a part of the path is a file; choose another path"}.get(exc.errno or 0, "")
    return f"{where}{what}" + (f"; {hint}" if hint else "")


def note(message: str) -> None:
    typer.echo(f"docsynth: note: {message}", err=True)


def warn(message: str) -> None:
    typer.echo(f"docsynth: warning: {message}", err=True)


def path_or_none(path: Path | None) -> str | None:
    """A path flag as the config override it is (None: the flag was not given)."""
    return None if path is None else str(path)


# Values Typer parses for a command (``typer.Option(..., parser=...)``): a bad one raises
# typer.BadParameter, which the error contract above prints as a usage error, one line naming
# the option, exit 2, before the command starts, like a number out of range.


class Names(list[str]):
    """The values of a comma-separated option (``--cases a,b``). A list subclass, not
    ``list[str]``: Typer reads that annotation as a repeatable option."""


def comma_list(text: str) -> Names:
    """``a, b,,c`` -> [a, b, c]: spaces around the names and empty entries dropped."""
    return Names(part.strip() for part in text.split(",") if part.strip())


class Size(NamedTuple):
    width: int
    height: int


def wxh(text: str) -> Size:
    """``1280x960`` (or ``1280,960``) -> Size(1280, 960); each side from 16 px to the cap every
    image size has (docsynth.limits)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not match or not all(16 <= int(side) <= MAX_SIDE for side in match.groups()):
        raise typer.BadParameter(f"{text!r}: write WIDTHxHEIGHT, each side from 16 to {MAX_SIDE} px, e.g. 1280x960")
    return Size(int(match.group(1)), int(match.group(2)))


class Setting(NamedTuple):
    key: str
    value: Any


def key_value(text: str) -> Setting:
    """``KEY=VALUE`` with the value read as a YAML scalar (a number, true/false, a string)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise typer.BadParameter(f"{text!r}: write KEY=VALUE, e.g. api_url=http://127.0.0.1:8000/v1/")
    return Setting(key.strip(), yaml.safe_load(value) if value.strip() else "")


def emit(result: Any, as_json: bool, human: str | None = None) -> None:
    """Print a command's result on stdout."""
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        typer.echo(human if human is not None else json.dumps(result, indent=2, default=str))


def print_table(table: Any) -> None:
    """A rich table on stdout. In a terminal it fits the window; piped or redirected, rich would
    cut it at 80 columns, so it gets whatever width its cells need (and --json has it all)."""
    piped = not sys.stdout.isatty()
    Console(width=100_000 if piped else None, soft_wrap=piped).print(table)


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> config_mod.RunConfig:
    return config_mod.load(path, overrides)
