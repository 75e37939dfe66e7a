"""Shared fixtures. Tests load only docsynth's own plugins, never whatever else is installed."""

from __future__ import annotations

import os

import pytest

# Before anything imports docsynth.cli.app: only the built-in distribution's entry points load.
os.environ["DOCSYNTH_LOAD_PLUGINS"] = "docsynth"
os.environ.pop("DOCSYNTH_DISABLE_PLUGINS", None)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Each test runs in its own empty folder with a fresh plugin host."""
    from docsynth import plugins

    monkeypatch.setenv("DOCSYNTH_LOAD_PLUGINS", "docsynth")
    monkeypatch.chdir(tmp_path)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def cli():
    """Run the CLI in-process: ``cli("generate", "--json")`` -> result with exit_code, stdout, stderr."""
    from typer.testing import CliRunner

    from docsynth.cli.app import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def http_server():
    """The tests' HTTP server on 127.0.0.1 (tests/local_server.py): files, fake APIs, faults."""
    from local_server import LocalServer

    server = LocalServer()
    yield server
    server.close()
