"""Commands `docsynth run` (the whole experiment from one YAML file) and `docsynth report`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from docsynth.cli.app import JsonOpt, emit

    @app.command("run")
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
        from docsynth.errors import DocsynthError
        from docsynth.progress import progress_bar
        from docsynth.run.runner import run

        if config and config_opt and config != config_opt:
            raise DocsynthError(f"two configs given ({config} and --config {config_opt}); pass one")
        summary = run(config or config_opt, start=start, until=until, force=force or [], progress=progress_bar)
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
        emit(summary, as_json, "\n".join(lines))

    @app.command("report")
    def report_cmd(
        run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder made by `docsynth run` (its run.dir).",
                                       file_okay=False),
        out: Path | None = typer.Option(None, "--out", "-o", help="HTML file (default: RUN/report.html)."),
        force: bool = typer.Option(False, "--force", help="Replace --out even if it is not a docsynth report."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Write one self-contained HTML page about a run: config, samples, statistics, curves,
        evaluation, worst cases and timings."""
        from docsynth import outputs
        from docsynth.report.page import write_report
        from docsynth.report.run_folder import RunFolder

        target = out if out is not None else run_dir / "report.html"
        outputs.check_file(target)
        RunFolder(run_dir)  # not a run folder: one line, before anything is written
        if target.resolve() != (run_dir / "report.html").resolve():  # the run's files are its inputs
            # (a foreign file elsewhere is write_report's to refuse, naming what it is)
            outputs.refuse_replacing([target], inputs=[run_dir], force=True)
        path = write_report(run_dir, out, force=force)
        emit({"report": str(path)}, as_json, f"report: {path}")
