"""Plugin host: discovery through entry points, allow/deny lists, broken plugins, listing."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import tomllib
from helpers import REPO, run_docsynth

from docsynth import plugins
from docsynth.hookspecs import hookimpl

EXAMPLE = REPO / "plugins" / "examples" / "docsynth-example-source"


def test_builtins_cover_every_kind(cli):
    result = cli("plugins", "list", "--json")
    assert result.exit_code == 0
    infos = json.loads(result.stdout)
    kinds = {kind for info in infos for kind in info["provides"]}
    assert {"source", "background", "mask", "compositor", "executor"} <= kinds
    by_name = {info["name"]: info for info in infos}
    assert by_name["sources-procedural"]["provides"] == {"source": ["procedural"]}
    assert by_name["sources-procedural"]["distribution"] == "docsynth"
    assert by_name["sources-procedural"]["version"]
    assert all(not info["errors"] for info in infos)


def test_load_allow_list_and_disable(monkeypatch):
    monkeypatch.setenv("DOCSYNTH_LOAD_PLUGINS", "sources-procedural")
    plugins.reset()
    assert [p.name for p in plugins.host().plugins()] == ["sources-procedural"]
    monkeypatch.setenv("DOCSYNTH_LOAD_PLUGINS", "docsynth")
    monkeypatch.setenv("DOCSYNTH_DISABLE_PLUGINS", "sources-folder")
    plugins.reset()
    names = [p.name for p in plugins.host().plugins()]
    assert "sources-folder" not in names and "sources-procedural" in names
    monkeypatch.setenv("DOCSYNTH_LOAD_PLUGINS", "")
    plugins.reset()
    assert plugins.host().plugins() == []


def test_broken_plugin_is_reported_not_fatal(cli):
    broken = types.ModuleType("broken_plugin")

    @hookimpl
    def register_sources(register):
        raise RuntimeError("boom")

    class NoLoad:
        name = "half"  # lacks the Source methods

    @hookimpl
    def register_backgrounds(register):
        register(NoLoad())

    broken.register_sources = register_sources
    broken.register_backgrounds = register_backgrounds
    plugins.host().add(broken, "broken")
    infos = {p.name: p for p in plugins.host().plugins()}
    errors = " ".join(infos["broken"].errors)
    assert "register_sources failed: RuntimeError: boom" in errors
    assert "lacks" in errors and "load_background" in errors
    assert "procedural" in plugins.names("source")  # the others still work
    result = cli("plugins", "list", "--json")
    assert result.exit_code == 0
    assert any("boom" in e for info in json.loads(result.stdout) for e in info["errors"])


def _install_with_dist_info(src: Path, site: Path) -> None:
    """Put a plugin distribution on a path the way pip would: package + dist-info."""
    meta = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    pkg = meta["name"].replace("-", "_")
    import shutil

    shutil.copytree(src / pkg, site / pkg)
    dist = site / f"{pkg}-{meta['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    eps = meta["entry-points"]["docsynth"]
    (dist / "entry_points.txt").write_text("[docsynth]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))


@pytest.mark.slow
def test_third_party_plugin_discovered_and_used(tmp_path):
    site = tmp_path / "site"
    _install_with_dist_info(EXAMPLE, site)
    env = {"PYTHONPATH": str(site), "DOCSYNTH_LOAD_PLUGINS": "docsynth,docsynth-example-source"}
    listed = run_docsynth("plugins", "list", "--json", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    info = {p["name"]: p for p in json.loads(listed.stdout)}["example-ruled"]
    assert info["distribution"] == "docsynth-example-source"
    assert info["provides"] == {"source": ["ruled"]}
    # A plugin source that makes its own pages needs no data: `sources list` says it is ready.
    sources = run_docsynth("sources", "list", "--json", cwd=tmp_path, env=env)
    ruled = {i["name"]: i for i in json.loads(sources.stdout)}["ruled"]
    assert ruled["present"] and ruled["documents"] == 4 and ruled["note"].startswith("ready"), ruled
    (tmp_path / "docsynth.yaml").write_text(
        "generate:\n  source: ruled\n  documents_count: 2\n  per_document: 2\n  backgrounds_count: 2\n"
        "  out: ds\n  compositor: homography\n")
    made = run_docsynth("generate", "--json", cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    rows = [json.loads(line) for line in (tmp_path / "ds" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {r["document"]["source"] for r in rows} == {"ruled"}
    # Not on the allow-list: not loaded, and generate names the known sources.
    hidden = run_docsynth("generate", "--out", "other", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert hidden.returncode != 0
    assert "unknown source 'ruled'" in hidden.stderr and "procedural" in hidden.stderr


@pytest.mark.slow
def test_entry_point_that_fails_to_import_is_reported(tmp_path):
    site = tmp_path / "site"
    dist = site / "bad_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bad-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[docsynth]\nbad = no_such_module_xyz\n")
    env = {"PYTHONPATH": str(site), "DOCSYNTH_LOAD_PLUGINS": "docsynth,bad-plugin"}
    result = run_docsynth("plugins", "list", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0
    bad = {p["name"]: p for p in json.loads(result.stdout)}["bad"]
    assert "failed to load: ModuleNotFoundError" in bad["errors"][0]
    assert "plugin bad: failed to load" in result.stderr
    assert "Traceback" not in result.stderr


def test_plugins_install_without_pip_is_a_clear_error(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "pip", None)  # import pip -> ImportError
    result = cli("plugins", "install", "whatever")
    assert result.exit_code != 0
    assert "pip is not available" in result.stderr


def test_plugin_can_add_a_command():
    import typer
    from typer.testing import CliRunner

    from docsynth.cli.common import Group

    extra = types.ModuleType("hello_plugin")

    @hookimpl
    def register_commands(cli):
        @cli.command()
        def hello(name: str = "world"):
            typer.echo(f"hello {name}")

    extra.register_commands = register_commands
    plugins.host().add(extra, "hello")
    app = typer.Typer(cls=Group)

    @app.command()
    def other():
        pass

    plugins.host().add_commands(app)
    result = CliRunner().invoke(app, ["hello", "--name", "docs"])
    assert result.exit_code == 0 and result.stdout.strip() == "hello docs"
    assert "register_commands" in {p.name: p for p in plugins.host().plugins()}["hello"].hooks
