"""The CLI as a user meets it: version, help, clean errors, and no torch on the light paths."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import run_docsynth

import docsynth


@pytest.mark.slow
def test_version_and_module_entry(tmp_path):
    result = run_docsynth("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"docsynth {docsynth.__version__}"


CHECK_NO_TORCH = """
import sys

from docsynth.cli.app import main
try:
    main({args!r})
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("torch", "torchvision") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def _heavy_modules_after(args: list[str], cwd) -> str:
    code = CHECK_NO_TORCH.format(args=args)
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                         env={**__import__("os").environ, "DOCSYNTH_LOAD_PLUGINS": "docsynth"}, timeout=300)
    line = [s for s in out.stdout.splitlines() if s.startswith("HEAVY=")]
    assert line, out.stderr
    return line[0][len("HEAVY="):]


@pytest.mark.slow
def test_help_and_generate_do_not_import_torch(tmp_path):
    assert _heavy_modules_after(["--help"], tmp_path) == ""
    assert _heavy_modules_after(["generate", "--count", "2", "--out", "ds", "--json"], tmp_path) == ""
    assert (tmp_path / "ds" / "manifest.jsonl").is_file()


@pytest.mark.slow
def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path):
    (tmp_path / "docsynth.yaml").write_text("generate:\n  workers: lots\n")
    result = run_docsynth("generate", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "docsynth: error: docsynth.yaml:2: 'generate.workers' is 'lots', expected an integer"
    assert result.stdout == ""
    missing = run_docsynth("generate", "--documents", "nope", "--config", "docsynth.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_json_summary_on_stdout_only(tmp_path):
    result = run_docsynth("generate", "--count", "3", "--out", "ds", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["samples"] == 3


@pytest.mark.slow
def test_command_lists_reflow_each_commands_summary(tmp_path):
    """Wide enough, every command's summary is one row: the docstrings' line breaks are not kept."""
    for group in ([], ["sources"], ["backgrounds"]):
        result = run_docsynth(*group, "--help", cwd=tmp_path, env={"COLUMNS": "400"})
        assert result.returncode == 0, result.stderr
        panel = result.stdout[result.stdout.index("Commands"):]
        rows = [line.strip("│ ").split() for line in panel.splitlines()[1:] if line.startswith("│")]
        assert len(rows) >= 2 and all(len(row) >= 2 for row in rows), group
        continuation = [row for row in rows if result.stdout.count(f"│ {row[0]} ") == 0]
        assert not continuation, (group, continuation)


@pytest.mark.parametrize("args, needles", [
    (["scan", "p.jpg", "--out", "o", "--min-confidence", "2"], ["--min-confidence", "less than or equal to 1"]),
    (["scan", "p.jpg", "--out", "o", "--min-confidence", "nan"], ["--min-confidence"]),
    (["hardcases", "o", "--count", "0"], ["--count", "greater than or equal to 1"]),
    (["preview", "d", "--out", "s.png", "--columns", "65"], ["--columns", "64"]),
    (["export", "d", "--format", "voc", "--out", "x"], ["--format", "'voc' is not one of", "'uvdoc'"]),
    (["export-model", "m.pt", "--precision", "fp8", "--out", "m.onnx"], ["--precision", "'fp32', 'fp16', 'int8'"]),
    (["scan", "p.jpg"], ["Missing option '--out'", "scan --help"]),
    (["no-such-command"], ["No such command"]),
    # values Typer parses with docsynth's parsers (cli/common.py): comma lists, WxH, KEY=VALUE
    (["hardcases", "o", "--cases", "receipt,nonsense"], ["--cases: unknown case 'nonsense'", "hardcases --help"]),
    (["backgrounds", "import-textures", "t", "--size", "big"], ["--size: 'big': write WIDTHxHEIGHT"]),
    (["backgrounds", "import-textures", "t", "--size", "9000x900"], ["--size", "from 16 to 8192 px"]),
    (["backgrounds", "normalize", "bg", "--min-size", "8x8"], ["--min-size: '8x8'"]),
    (["backgrounds", "scrape", "--option", "=1"], ["--option: '=1': write KEY=VALUE"]),
    (["sources", "prepare", "--mix", "docvqa=lots"], ["--mix: count of 'docvqa' is 'lots'", "prepare --help"]),
    (["sources", "prepare", "--mix", ","], ["--mix: empty"]),
])
def test_values_typer_checks_are_one_line_errors(cli, args, needles):
    """Ranges and choices are checked by Typer as it parses, and still end as the one error
    line (exit 2) every docsynth command gives, not click's usage box."""
    result = cli(*args)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("docsynth: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_cli_choices_are_the_library_tables():
    """The choices the CLI offers are written out (`--help` must not import the exporters);
    they must stay the formats the library has."""
    from typing import get_args

    from docsynth.cli import dataset, scan
    from docsynth.dataset.export import FORMATS
    from docsynth.scan.exporters import EXPORTERS

    assert get_args(dataset.ExportFormat) == FORMATS
    assert get_args(scan.ModelFormat) == tuple(EXPORTERS)
    assert set(get_args(scan.Precision)) == {p for e in EXPORTERS.values() for p in e.precisions}


def test_option_values_arrive_parsed(monkeypatch, cli):
    """What the parsers hand a command: names without spaces or empty entries, 'none' labels,
    WxH as (width, height) and KEY=VALUE with YAML scalars."""
    from docsynth.cli import backgrounds, evaluate, generate
    from docsynth.cli.common import comma_list, key_value, wxh

    assert comma_list(" a, b,,c ") == ["a", "b", "c"] and comma_list("") == []
    assert generate._label_list(" none ") == [] and generate._label_list("dewarp, text") == ["dewarp", "text"]
    assert wxh("1280x960") == (1280, 960) == wxh(" 1280 , 960 ") and wxh("16X8192").height == 8192
    assert key_value("per_page= 20") == ("per_page", 20) and key_value("on=true").value is True
    assert key_value("url=http://h:8000/v1/?a=b") == ("url", "http://h:8000/v1/?a=b") and key_value("k=").value == ""
    class Parsed(Exception):  # stops the command where the parsed values arrive
        pass

    def record(*args, **kwargs):
        raise Parsed(args, kwargs)

    monkeypatch.setattr(evaluate.hardcases, "write_hardcases", record)
    with pytest.raises(Parsed) as seen:
        cli("hardcases", "o", "--cases", " receipt,,nopage ")
    assert seen.value.args[1]["cases"] == ["receipt", "nopage"]
    monkeypatch.setattr(backgrounds, "import_textures", record)
    with pytest.raises(Parsed) as seen:
        cli("backgrounds", "import-textures", "t", "--size", "320x240")
    settings = seen.value.args[0][2]
    assert (settings.width, settings.height) == (320, 240)
