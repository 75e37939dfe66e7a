"""Commands `docsynth scan`, `docsynth evaluate` and `docsynth export-model`.

torch and onnxruntime are imported inside the commands, so `docsynth --help` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from docsynth.errors import DocsynthError

MODEL_SUFFIXES = {".pt", ".pth", ".onnx", ".ts", ".torchscript"}
APP_SUFFIXES = {".tflite": "TFLite", ".mlpackage": "Core ML", ".mlmodel": "Core ML"}  # exports for apps


def split_model_arg(args: list[Path], what: str) -> tuple[Path | None, list[Path]]:
    """``[CHECKPOINT] INPUT...``: the first argument is the model when it has a model suffix."""
    if args and args[0].suffix.lower() in APP_SUFFIXES:
        raise DocsynthError(f"{args[0]}: a {APP_SUFFIXES[args[0].suffix.lower()]} export runs in apps, not in "
                            "docsynth; pass the .pt checkpoint or its ONNX export (docsynth export-model "
                            "--format onnx)")
    if args and args[0].suffix.lower() in MODEL_SUFFIXES:
        if len(args) == 1:
            raise DocsynthError(f"{args[0]}: that is a model file; pass {what} after it")
        return args[0], args[1:]
    return None, list(args)


def check_scan_output(inputs: list[Path], out: Path, force: bool) -> None:
    """Before any photo is read: ``--out`` can be written, is not a photo folder, and no page
    would replace a photo (never) or a file an earlier scan did not write (only with --force)."""
    import json

    from docsynth import outputs
    from docsynth.scan.photos import collect_photos

    photos = collect_photos(inputs)
    outputs.check_folder(out)
    outputs.refuse_overlap(out, [i for i in inputs if i.is_dir()], holding=False)
    outputs.refuse_inside(out, inputs)  # photo folders are listed recursively
    from docsynth.scan.photos import PROGRESS

    try:  # pages an earlier scan wrote into --out may be replaced by a new scan
        earlier = [r["page"] for r in json.loads((out / "scan.json").read_text())["results"] if r.get("page")]
    except (OSError, ValueError, KeyError, TypeError):
        earlier = []
    pages = [out / f"{name}.jpg" for _, name in photos]
    if (out / PROGRESS).is_file():  # an interrupted scan wrote these (Ctrl-C may land between a
        earlier += pages            # page and its journal line): the rerun resumes it
    outputs.refuse_replacing(pages, inputs=[p for p, _ in photos], ours=earlier, force=force)


def check_report_output(folder: Path, out: Path, force: bool) -> None:
    """Before scoring: the report folder can be written and is not the photo folder (worst.png
    would become a photo there), and files an earlier evaluation did not write stay."""
    from docsynth import outputs

    outputs.check_folder(out)
    outputs.refuse_overlap(out, [folder], holding=False)
    outputs.refuse_inside(out, [folder])  # worst.png among the photos would be scanned as one
    files = [out / "per_image.csv", out / "worst.png"]
    outputs.refuse_replacing(files, inputs=[folder], ours=files if (out / "results.json").is_file() else [],
                             force=force)


def register(app: typer.Typer) -> None:
    from docsynth.cli.app import ConfigOpt, JsonOpt, emit, load_config
    from docsynth.progress import progress_bar

    post_help = "Post-processor plugin (reference, robust, refine, ...)."

    @app.command("scan")
    def scan_cmd(
        args: list[Path] = typer.Argument(..., metavar="[CHECKPOINT] IMAGE_OR_DIR...",
                                          help="Optional model (.pt checkpoint, .onnx or TorchScript; default: the "
                                               "packaged model), then photos or folders of photos."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder: flattened pages, corners.csv, scan.json."),
        post: str | None = typer.Option(None, "--post", help=post_help),
        force: bool = typer.Option(False, "--force", help="Replace the results of an earlier scan in --out."),
        min_confidence: float = typer.Option(0.05, "--min-confidence",
                                             help="Hold back pages found with a lower confidence (0: write all)."),
        config: Path | None = ConfigOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Find the page in each photo and write it flattened, plus corners.csv."""
        from docsynth.scan.photos import scan_photos, stamp
        from docsynth.scan.scanner import Scanner, load_backend

        if not 0 <= min_confidence <= 1:  # also refuses NaN
            raise DocsynthError(f"--min-confidence: {min_confidence} is not a confidence from 0 to 1")
        checkpoint, inputs = split_model_arg(args, "photos or folders")
        sc = load_config(config, {"scan.postprocessor": post}).scan
        if checkpoint is None and sc.checkpoint:
            checkpoint = Path(sc.checkpoint)
        scanner = Scanner(load_backend(checkpoint), sc.postprocessor, sc.postprocessor_options)
        check_scan_output(inputs, out, force)
        with progress_bar("scan") as bar:
            model = {"model": str(checkpoint) if checkpoint else "packaged",
                     "stamp": stamp(checkpoint) if checkpoint else None}  # an interrupted scan resumes with it
            summary = scan_photos(scanner, inputs, out, force=force, jpeg_quality=sc.jpeg_quality,
                                  progress=bar.advance, on_start=bar.start, fingerprint=model,
                                  min_confidence=min_confidence,
                                  warn=lambda msg: typer.echo(f"docsynth: warning: {msg}", err=True))
        missing = [r for r in summary["results"] if r["page"] is None]
        human = "\n".join(
            [f"{Path(r['image']).name}: " + (f"page -> {r['page']} (confidence {r['confidence']:.2f})"
                                             if r["page"] else f"no page written ({r['reason']})"
                                             if r.get("held_back") else f"no document found ({r['reason']})")
             for r in summary["results"]]
            + [f"{summary['pages']} of {summary['photos']} photos scanned into {out}; corners in "
               f"{summary['corners_csv']}" + (f"; {len(missing)} without a page" if missing else "")
               + (f" ({summary['held_back']} held back: confidence below {min_confidence}; "
                  "--min-confidence 0 writes them)"
                  if summary["held_back"] else "")
               + (f" ({summary['skipped']} unreadable, skipped)" if summary.get("skipped") else "")
               + (f"; {summary['resumed']} done by the interrupted scan" if summary["resumed"] else "")])
        emit(summary, as_json, human)
        if summary["skipped"]:  # the scan is not complete: say so in the exit status too
            from docsynth.errors import Incomplete

            first = next(r for r in summary["results"] if r.get("skipped"))
            raise Incomplete(f"{summary['skipped']} of {summary['photos']} photos could not be read (first: "
                             f"{first['image']}); replace them and rerun, the others are in {out}")

    @app.command("evaluate")
    def evaluate_cmd(
        args: list[Path] | None = typer.Argument(None, metavar="[CHECKPOINT] DIR",
                                                    help="Optional model (default: the packaged model), then a "
                                                         "folder of photos with corners.csv (default: evaluate.data)."),
        post: str | None = typer.Option(None, "--post", help=post_help),
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
        from docsynth.evaluate import command as ev

        checkpoint, rest = split_model_arg(list(args or []), "the photo folder")
        if len(rest) > 1:
            raise DocsynthError(f"expected one photo folder, got {len(rest)}: {', '.join(map(str, rest))}")
        cfg = load_config(config, {"evaluate.postprocessor": post, "evaluate.baseline": baseline,
                                   "evaluate.packaged": packaged,
                                   "evaluate.out": None if out is None else str(out), "evaluate.worst": worst})
        ec = cfg.evaluate
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
                                       note=lambda msg: typer.echo(f"docsynth: note: {msg}", err=True),
                                       warn=lambda msg: typer.echo(f"docsynth: warning: {msg}", err=True),
                                       packaged=ec.packaged)
        human = ev.format_report(report) + f"\n\nreport: {report_dir}"
        emit(report, as_json, human)
        if report.get("skipped"):  # scores over fewer photos than asked: not a complete evaluation
            from docsynth.errors import Incomplete

            raise Incomplete(f"{len(report['skipped'])} photos of {folder} could not be read (first: "
                             f"{report['skipped'][0]['image']}) and are not in the scores; replace them and rerun")

    @app.command("hardcases")
    def hardcases_cmd(
        out: Path = typer.Argument(..., help="Folder to write (images/ + corners.csv)."),
        count: int = typer.Option(24, "--count", "-n", help="Photos per case."),
        seed: int = typer.Option(2026, "--seed", help="Seed of the benchmark (training never uses its indices)."),
        cases: str | None = typer.Option(None, "--cases", help="Comma-separated cases (default: all)."),
        force: bool = typer.Option(False, "--force", help="Replace a benchmark made with other settings."),
        as_json: bool = JsonOpt,
    ) -> None:
        """A fixed synthetic benchmark, one set per hard case; score it with `docsynth evaluate OUT`.

        The 15 cases: light desk, clutter, sheets under the page, card in the hand, receipt,
        close-up, squashed, greyscale, page held, page filling the frame, larger sheet under
        it, objects on it, round objects beside it, booklet, and photos without a page. The
        evaluation's subsets are the cases; the page-less photos measure false acceptance."""
        from docsynth.evaluate import hardcases

        names = [c.strip() for c in cases.split(",") if c.strip()] if cases else None
        for name in names or []:
            if name not in hardcases.CASES:
                raise DocsynthError(f"--cases: unknown case {name!r} (known: {', '.join(hardcases.CASES)})")
        if count < 1 or count > 10000:
            raise DocsynthError(f"--count: must be between 1 and 10000, got {count}")
        with progress_bar("hardcases") as bar:
            started: list[bool] = []

            def advance(done: int, total: int) -> None:
                if not started:
                    bar.start(total)
                    started.append(True)
                bar.advance()

            summary = hardcases.write_hardcases(out, count=count, seed=seed, cases=names, force=force,
                                                progress=advance)
        emit(summary, as_json, f"wrote {summary['photos']} photos ({summary['per_case']} per case: "
                               f"{', '.join(summary['cases'])}) to {out}; score them: docsynth evaluate {out}")

    @app.command("export-model")
    def export_cmd(
        checkpoint: Path = typer.Argument(..., help="Checkpoint (.pt) to export."),
        fmt: str | None = typer.Option(None, "--format", "-f", help="onnx, torchscript, tflite or coreml "
                                                                       "(default: what --out's suffix says)."),
        out: Path = typer.Option(..., "--out", "-o", help="File to write (.onnx / .ts / .tflite / .mlpackage)."),
        precision: str = typer.Option("fp32", "--precision", "-p",
                                      help="fp32, fp16 (onnx, coreml) or int8 (onnx, static, calibrated on composites)."),
        real: Path | None = typer.Option(None, "--real", help="Also check agreement on these photos "
                                                                 "(a folder with corners.csv)."),
        check: int = typer.Option(16, "--check", help="Composites in the agreement check."),
        calibration: int = typer.Option(128, "--calibration", help="Composites that calibrate int8 ranges."),
        post: str = typer.Option("refine", "--post", help="Post-processor used by the agreement check."),
        max_corner_px: float | None = typer.Option(None, "--max-corner-px",
                                                      help="Override the precision's corner tolerance (px)."),
        max_jaccard_diff: float | None = typer.Option(None, "--max-jaccard-diff",
                                                         help="Override the precision's mean-Jaccard tolerance."),
        max_confidence_diff: float | None = typer.Option(None, "--max-confidence-diff",
                                                            help="Override the precision's tolerance on one photo's "
                                                                 "confidence (0.01 fp32, 0.2 fp16, 0.3 int8)."),
        atol: float = typer.Option(1e-3, "--atol", help="Largest allowed difference from PyTorch's raw outputs (fp32)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing file."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Export a model (ONNX fp32/fp16/int8, TorchScript, TFLite, Core ML), verified against the original."""
        from docsynth import outputs
        from docsynth.scan.export_model import TOLERANCES, Tolerance, export_model, format_for

        if out.exists() or fmt is not None:  # never an input, whatever the format
            outputs.refuse_replacing([out], inputs=[checkpoint] + ([real] if real else []), force=force)
        fmt = format_for(out, fmt)
        if fmt == "coreml":  # an .mlpackage is a folder
            outputs.check_folder(out)
        else:
            outputs.check_file(out)
        outputs.refuse_replacing([out], inputs=[checkpoint] + ([real] if real else []), force=force)
        tolerance = None
        if max_corner_px is not None or max_jaccard_diff is not None or max_confidence_diff is not None:
            default = TOLERANCES.get(precision, TOLERANCES["fp32"])["real"]
            tolerance = Tolerance(default.corner_px if max_corner_px is None else max_corner_px,
                                  default.jaccard if max_jaccard_diff is None else max_jaccard_diff,
                                  two_sided=default.two_sided,
                                  confidence=default.confidence if max_confidence_diff is None else max_confidence_diff)
        summary = export_model(checkpoint, fmt, out, force=force, atol=atol, precision=precision, real=real,
                               check=check, calibration=calibration, post=post, tolerance=tolerance,
                               progress=lambda msg: typer.echo(f"docsynth: {msg}", err=True))
        emit(summary, as_json, format_export(summary))


def format_export(summary: dict[str, Any]) -> str:
    """The human summary of an export: size, latency, agreement per photo set."""
    lines = [f"wrote {summary['out']} ({summary['format']} {summary['precision']}, outputs "
             f"{', '.join(summary['outputs'])}): {summary['bytes'] / 1e6:.2f} MB "
             f"(checkpoint {summary['bytes_original'] / 1e6:.2f} MB)"]
    if "agreement" not in summary:
        lines.append(f"verified: {summary['verified']}")
        return "\n".join(lines)
    lines.append(f"latency on one core: {summary['latency_ms']:.1f} ms (PyTorch {summary['latency_ms_original']:.1f} ms); "
                 f"largest raw-output difference {summary['max_abs_diff']:.2g}")
    for name, a in summary["agreement"].items():
        tol = summary["tolerance"][name]
        jac = ("" if a["jaccard_diff"] is None else
               f"; mean Jaccard {a['mean_jaccard_export']:.4f} vs {a['mean_jaccard_original']:.4f} "
               f"(difference {a['jaccard_diff']:+.4f})")
        differs = f"; a page found by only one of them in {len(a['found_differs'])}" if a["found_differs"] else ""
        median = "" if a["median_corner_px"] is None else f" (median {a['median_corner_px']:.3f})"
        model = ("" if a["median_model_corner_px"] is None else
                 f"; model corners median {a['median_model_corner_px']:.3f} px, max {a['max_model_corner_px']:.3f}")
        conf = ("" if a.get("mean_confidence_diff") is None else
                f"; confidence within {a['max_confidence_diff']:.3f} (mean {a['mean_confidence_diff']:.4f})")
        lines.append(f"agreement on {a['photos']} {'composites' if name == 'composites' else 'real photos'} "
                     f"({summary['post']}): corners within {a['max_corner_px']:.3f} px{median}{differs}{model}{jac}"
                     f"{conf}; tolerance " + (f"{tol['corner_px']} px, " if tol["corner_px"] is not None else "")
                     + (f"Jaccard within {tol['jaccard']}" if tol["two_sided"]
                        else f"Jaccard at most {tol['jaccard']} lower")
                     + (f", confidence within {tol['confidence']}" if tol.get("confidence") is not None else ""))
    return "\n".join(lines)
