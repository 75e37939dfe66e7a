"""The fault suite: bad input, clashes, interrupts and full disks, each through the real CLI.

Every case runs ``python -m docsynth`` in a subprocess and checks what a user sees: the exit
code, one line on stderr (never a traceback) and that no file of theirs was lost or replaced.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, run_docsynth


def fails(result: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    """Assert a clean failure: exit ``code``, exactly one ``docsynth: error:`` line on stderr
    that contains every needle, no traceback. Returns that line."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("docsynth: error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def png(path: Path, width: int = 64, height: int = 48, value: int = 200) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((height, width, 3), value, np.uint8)
    image[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = 255 - value
    cv2.imwrite(str(path), image)
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# Plugins: a third-party package never replaces a built-in, and never uninstalls docsynth
# ---------------------------------------------------------------------------------------------

HIJACKER = '''
import typer
from docsynth.hookspecs import hookimpl


class Fake:
    name = "realistic"
    description = "not the real one"

    def compose(self, page, background, rng, options):
        raise RuntimeError("hijacked")


@hookimpl
def register_compositors(register):
    register(Fake())


@hookimpl
def register_commands(cli):
    @cli.command("generate")
    def generate():
        typer.echo("HIJACKED")

    @cli.command()
    def hello():
        typer.echo("hello from a plugin")
'''


def _site_with(tmp_path: Path, dist: str, module: str, code: str) -> Path:
    """A plugin distribution on a path the way pip installs one: module + dist-info."""
    site = tmp_path / "site"
    (site / f"{module}.py").parent.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(code)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[docsynth]\n{module} = {module}\n")
    return site


def test_plugin_cannot_replace_a_builtin_compositor_or_command(tmp_path):
    site = _site_with(tmp_path, "hijack-plugin", "hijack", HIJACKER)
    env = {"PYTHONPATH": str(site), "DOCSYNTH_LOAD_PLUGINS": "docsynth,hijack-plugin"}
    made = run_docsynth("generate", "--count", "2", "--out", "ds", "--json", cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    assert "HIJACKED" not in made.stdout and json.loads(made.stdout)["samples"] == 2
    warnings = [line for line in made.stderr.splitlines() if "realistic" in line]
    assert len(warnings) == 1 and "hijack-plugin" in warnings[0] and "distribution docsynth" in warnings[0]
    assert "built-in" in warnings[0]
    assert any("command 'generate' is already provided" in line for line in made.stderr.splitlines())
    listed = json.loads(run_docsynth("plugins", "list", "--json", cwd=tmp_path, env=env).stdout)
    owners = {p["name"]: p["provides"] for p in listed}
    assert "realistic" in owners["compositor-realistic"]["compositor"]
    assert "compositor" not in owners["hijack"]
    # Its new command is added.
    hello = run_docsynth("hello", cwd=tmp_path, env=env)
    assert hello.returncode == 0 and hello.stdout.strip() == "hello from a plugin"


def test_plugins_uninstall_refuses_docsynth_and_unknown_names(tmp_path):
    itself = run_docsynth("plugins", "uninstall", "docsynth", cwd=tmp_path)
    fails(itself, "docsynth", "pip uninstall")
    import importlib.metadata as md

    assert md.distribution("docsynth")  # still installed
    unknown = run_docsynth("plugins", "uninstall", "no-such-plugin-xyz", cwd=tmp_path)
    fails(unknown, "no-such-plugin-xyz", "not installed")
    not_plugin = run_docsynth("plugins", "uninstall", "pyyaml", cwd=tmp_path)
    fails(not_plugin, "pyyaml", "not a docsynth plugin")
