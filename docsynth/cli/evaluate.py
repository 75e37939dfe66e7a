"""Commands `docsynth evaluate` and `docsynth hardcases` (docsynth/evaluate/)."""

from __future__ import annotations

from pathlib import Path

import typer

from docsynth import outputs
from docsynth.cli.common import ConfigOpt, JsonOpt, Names, comma_list, emit, load_config, note, path_or_none, warn
from docsynth.cli.scan import POST_HELP, split_model_arg
from docsynth.errors import DocsynthError, Incomplete
from docsynth.evaluate import command as ev
from docsynth.evaluate import hardcases
from docsynth.progress import progress_bar


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
    app.command("hardcases")(hardcases_cmd)


def check_report_output(folder: Path, out: Path, force: bool) -> None:
    """Before scoring: the report folder can be written and is not the photo folder (worst.png
    would become a photo there), and files an earlier evaluation did not write stay."""
    outputs.check_folder(out)
    outputs.refuse_overlap(out, [folder], holding=False)
    outputs.refuse_inside(out, [folder])  # worst.png among the photos would be scanned as one
    files = [out / "per_image.csv", out / "worst.png"]
    outputs.refuse_replacing(files, inputs=[folder], ours=files if (out / "results.json").is_file() else [],
                             force=force)


def evaluate_cmd(
    args: list[Path] | None = typer.Argument(None, metavar="[CHECKPOINT] DIR",
                                             help="Optional model (default: the packaged model), then a "
                                                  "folder of photos with corners.csv (default: evaluate.data)."),
    post: str | None = typer.Option(None, "--post", help=POST_HELP),
    baseline: str | None = typer.Option(None, "--baseline", help="Also score a non-learned baseline: classical."),
    packaged: bool | None = typer.Option(None, "--packaged/--no-packaged",
                                         help="Also score the packaged model beside CHECKPOINT "
                                              "(default: evaluate.packaged)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Report folder (results.json, per_image.csv, "
                                                              "worst.png); default: evaluate.out."),
    worst: int | None = typer.Option(None, "--worst", help="Worst cases on the contact sheet."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier report in the report folder."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Score page corners on real photos: SmartDoc 2015 Jaccard, mask IoU, worst cases."""
    checkpoint, rest = split_model_arg(list(args or []), "the photo folder")
    if len(rest) > 1:
        raise DocsynthError(f"expected one photo folder, got {len(rest)}: {', '.join(map(str, rest))}")
    ec = load_config(config, {"evaluate.postprocessor": post, "evaluate.baseline": baseline,
                              "evaluate.packaged": packaged, "evaluate.out": path_or_none(out),
                              "evaluate.worst": worst}).evaluate
    folder = rest[0] if rest else (Path(ec.data) if ec.data else None)
    if folder is None:
        raise DocsynthError("no photo folder: pass DIR (images + corners.csv) or set evaluate.data")
    if checkpoint is None and ec.checkpoint:
        checkpoint = Path(ec.checkpoint)
    report_dir = Path(ec.out)
    check_report_output(folder, report_dir, force)
    with progress_bar("evaluate") as bar:
        report = ev.run_evaluation(folder, checkpoint, post=ec.postprocessor,
                                   post_options=ec.postprocessor_options, baseline=ec.baseline,
                                   out=report_dir, worst=ec.worst, force=force, progress=bar,
                                   note=note, warn=warn, packaged=ec.packaged)
    emit(report, as_json, ev.format_report(report) + f"\n\nreport: {report_dir}")
    if report.get("skipped"):  # scores over fewer photos than asked: not a complete evaluation
        raise Incomplete(f"{len(report['skipped'])} photos of {folder} could not be read (first: "
                         f"{report['skipped'][0]['image']}) and are not in the scores; replace them and rerun")


def _cases(text: str) -> Names:
    names = comma_list(text)
    for name in names:
        if name not in hardcases.CASES:
            raise typer.BadParameter(f"unknown case {name!r} (known: {', '.join(hardcases.CASES)})")
    return names


def hardcases_cmd(
    out: Path = typer.Argument(..., help="Folder to write (images/ + corners.csv)."),
    count: int = typer.Option(24, "--count", "-n", min=1, max=10000, help="Photos per case."),
    seed: int = typer.Option(2026, "--seed", help="Seed of the benchmark (training never uses its indices)."),
    cases: Names | None = typer.Option(None, "--cases", parser=_cases, metavar="CASE,...",
                                       help="Comma-separated cases (default: all)."),
    force: bool = typer.Option(False, "--force", help="Replace a benchmark made with other settings."),
    as_json: bool = JsonOpt,
) -> None:
    # The help text is set below the function: it counts the cases from hardcases.CASES.
    with progress_bar("hardcases") as bar:
        summary = hardcases.write_hardcases(out, count=count, seed=seed, cases=cases or None, force=force,
                                            progress=bar)
    emit(summary, as_json, f"wrote {summary['photos']} photos ({summary['per_case']} per case: "
                           f"{', '.join(summary['cases'])}) to {out} (digest {summary['digest']}); "
                           f"score them: docsynth evaluate {out}")


# One paragraph per string: typer keeps a docstring's line breaks, which reads badly when rewrapped.
hardcases_cmd.__doc__ = "\n\n".join([
    "A fixed synthetic benchmark, one set per hard case; score it with `docsynth evaluate OUT`.",
    f"The {len(hardcases.CASES)} cases: light desk, clutter, sheets under the page, card in the hand, receipt, "
    "close-up, squashed, greyscale, page held, page filling the frame, larger sheet under it, objects on it, "
    "round objects beside it, booklet, photos without a page, then open books whose pages bow out of the gutter, "
    "sticky notes across the page edges, and blank pages. The evaluation's subsets are the cases; the page-less "
    "photos measure false acceptance.",
])
