"""Command `docsynth report`: one HTML page about a run (docsynth/report/)."""

from __future__ import annotations

from pathlib import Path

import typer

from docsynth import outputs
from docsynth.cli.common import JsonOpt, emit
from docsynth.report.page import write_report
from docsynth.report.run_folder import RunFolder


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)


def report_cmd(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder made by `docsynth run` (its run.dir).",
                                   file_okay=False),
    out: Path | None = typer.Option(None, "--out", "-o", help="HTML file (default: RUN/report.html)."),
    force: bool = typer.Option(False, "--force", help="Replace --out even if it is not a docsynth report."),
    as_json: bool = JsonOpt,
) -> None:
    """Write one self-contained HTML page about a run: config, samples, statistics, curves,
    evaluation, worst cases and timings."""
    target = out if out is not None else run_dir / "report.html"
    outputs.check_file(target)
    RunFolder(run_dir)  # not a run folder: one line, before anything is written
    if target.resolve() != (run_dir / "report.html").resolve():  # the run's files are its inputs
        # (a foreign file elsewhere is write_report's to refuse, naming what it is)
        outputs.refuse_replacing([target], inputs=[run_dir], force=True)
    path = write_report(run_dir, out, force=force)
    emit({"report": str(path)}, as_json, f"report: {path}")
