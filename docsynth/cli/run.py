"""Command `docsynth run`: the whole experiment from one YAML file (docsynth/run/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from docsynth.cli.common import JsonOpt, emit
from docsynth.errors import DocsynthError
from docsynth.progress import progress_bar
from docsynth.run.runner import run


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)


def run_cmd(
    config: Path | None = typer.Argument(None, metavar="CONFIG", dir_okay=False,
                                         help="Run config (default: ./docsynth.yaml, else defaults)."),
    config_opt: Path | None = typer.Option(None, "--config", "-c", dir_okay=False,
                                           help="Same as CONFIG, as every other command takes it."),
    start: str | None = typer.Option(None, "--from", metavar="STAGE",
                                     help="Start at STAGE; earlier stages are used as they are."),
    until: str | None = typer.Option(None, "--until", metavar="STAGE", help="Stop after STAGE."),
    force: list[str] | None = typer.Option(None, "--force", metavar="STAGE",
                                           help="Redo STAGE (and so every stage after it) even if "
                                                "up to date; repeatable."),
    as_json: bool = JsonOpt,
) -> None:
    """Run the stages docsynth.yaml names (sources, backgrounds, generate, split, train,
    evaluate), each into RUN/<stage>/; up-to-date stages are skipped, interrupted ones resume;
    RUN/report.html is written at the end."""
    if config and config_opt and config != config_opt:
        raise DocsynthError(f"two configs given ({config} and --config {config_opt}); pass one")
    summary = run(config or config_opt, start=start, until=until, force=force or [], bars=progress_bar)
    emit(summary, as_json, format_run(summary))


def format_run(summary: dict[str, Any]) -> str:
    """The human summary of a run: each stage's action and time, the scores, where the report is."""
    lines = []
    for entry in summary["stages"]:
        extra = f" in {entry['seconds']:.1f} s" if entry.get("seconds") is not None else ""
        lines.append(f"{entry['stage']:<12} {entry['action']}{extra}")
    evaluated = next((e for e in summary["stages"] if e["stage"] == "evaluate" and e.get("summary")), None)
    if evaluated and isinstance(evaluated["summary"].get("mean_jaccard"), dict):
        scores = ", ".join(f"{name} {value:.4f}" for name, value in evaluated["summary"]["mean_jaccard"].items())
        lines.append(f"mean Jaccard: {scores}")
    if summary.get("remark"):
        lines.append(summary["remark"])
    lines.append(f"run folder: {summary['run']} ({summary['seconds']:.1f} s)")
    if summary.get("report"):
        lines.append(f"report: {summary['report']}")
    return "\n".join(lines)
