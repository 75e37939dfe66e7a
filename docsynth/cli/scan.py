"""Commands `docsynth scan` and `docsynth export-model` (docsynth/scan/).

torch and onnxruntime load only when a command runs a model, so `docsynth --help` stays light.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import typer

from docsynth import outputs
from docsynth.cli.common import ConfigOpt, JsonOpt, emit, load_config, warn
from docsynth.errors import DocsynthError, Incomplete
from docsynth.progress import progress_bar
from docsynth.scan.export_model import TOLERANCES, Tolerance, export_model, format_for
from docsynth.scan.photos import JOURNAL, collect_photos, scan_photos, stamp
from docsynth.scan.scanner import Scanner, load_backend

# docsynth/scan/exporters' table and precisions, written out so that `docsynth --help` need not
# import the exporters (tests/test_cli.py checks that they agree)
ModelFormat = Literal["onnx", "torchscript", "tflite", "coreml"]
Precision = Literal["fp32", "fp16", "int8"]
POST_HELP = "Post-processor plugin (reference, robust, refine, ...)."


def register(app: typer.Typer) -> None:
    app.command("scan")(scan_cmd)
    app.command("export-model")(export_cmd)


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
    photos = collect_photos(inputs)
    outputs.check_folder(out)
    outputs.refuse_overlap(out, [i for i in inputs if i.is_dir()], holding=False)
    outputs.refuse_inside(out, inputs)  # photo folders are listed recursively

    try:  # pages an earlier scan wrote into --out may be replaced by a new scan
        earlier = [r["page"] for r in json.loads((out / "scan.json").read_text())["results"] if r.get("page")]
    except (OSError, ValueError, KeyError, TypeError):
        earlier = []
    pages = [out / f"{name}.jpg" for _, name in photos]
    if (out / JOURNAL).is_file():  # an interrupted scan wrote these (Ctrl-C may land between a
        earlier += pages            # page and its journal line): the rerun resumes it
    outputs.refuse_replacing(pages, inputs=[p for p, _ in photos], ours=earlier, force=force)


def scan_cmd(
    args: list[Path] = typer.Argument(..., metavar="[CHECKPOINT] IMAGE_OR_DIR...",
                                      help="Optional model (.pt checkpoint, .onnx or TorchScript; default: the "
                                           "packaged model), then photos or folders of photos."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: flattened pages, corners.csv, scan.json."),
    post: str | None = typer.Option(None, "--post", help=POST_HELP),
    force: bool = typer.Option(False, "--force", help="Replace the results of an earlier scan in --out."),
    min_confidence: float = typer.Option(0.05, "--min-confidence", min=0, max=1,
                                         help="Hold back pages found with a lower confidence (0: write all)."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Find the page in each photo and write it flattened, plus corners.csv."""
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
                              progress=bar, fingerprint=model,
                              min_confidence=min_confidence, warn=warn)
    emit(summary, as_json, format_scan(summary, out, min_confidence))
    if summary["skipped"]:  # the scan is not complete: say so in the exit status too
        first = next(r for r in summary["results"] if r.get("skipped"))
        raise Incomplete(f"{summary['skipped']} of {summary['photos']} photos could not be read (first: "
                         f"{first['image']}); replace them and rerun, the others are in {out}")


def format_scan(summary: dict[str, Any], out: Path, min_confidence: float) -> str:
    """The human summary of a scan: one line per photo, then the totals."""
    missing = [r for r in summary["results"] if r["page"] is None]
    return "\n".join(
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


def export_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint (.pt) to export."),
    fmt: ModelFormat | None = typer.Option(None, "--format", "-f", help="Default: what --out's suffix says."),
    out: Path = typer.Option(..., "--out", "-o", help="File to write (.onnx / .ts / .tflite / .mlpackage)."),
    precision: Precision = typer.Option("fp32", "--precision", "-p",
                                        help="fp16: onnx and coreml; int8: onnx (static, calibrated on composites)."),
    real: Path | None = typer.Option(None, "--real", help="Also check agreement on these photos "
                                                          "(a folder with corners.csv)."),
    check: int = typer.Option(16, "--check", min=1, help="Composites in the agreement check."),
    calibration: int = typer.Option(256, "--calibration", min=1, help="Composites that calibrate int8 ranges."),
    post: str = typer.Option("refine", "--post", help="Post-processor used by the agreement check."),
    max_corner_px: float | None = typer.Option(None, "--max-corner-px",
                                               help="Override the precision's corner tolerance (px)."),
    max_jaccard_diff: float | None = typer.Option(None, "--max-jaccard-diff",
                                                  help="Override the precision's mean-Jaccard tolerance."),
    max_confidence_diff: float | None = typer.Option(None, "--max-confidence-diff",
                                                     help="Override the precision's tolerance on one photo's "
                                                          "confidence (0.01 fp32, 0.2 fp16, 0.3 int8)."),
    max_flips: float | None = typer.Option(None, "--max-flips", min=0.0, max=1.0,
                                           help="Override the precision's largest share of photos where a model "
                                                "corner may jump to another heatmap peak (0 fp32, 0.125 fp16/int8)."),
    atol: float = typer.Option(1e-3, "--atol", help="Largest allowed difference from PyTorch's raw outputs (fp32)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    as_json: bool = JsonOpt,
) -> None:
    """Export a model (ONNX fp32/fp16/int8, TorchScript, TFLite, Core ML), verified against the original."""
    inputs = [checkpoint] + ([real] if real else [])
    if out.exists() or fmt is not None:  # never an input, whatever the format
        outputs.refuse_replacing([out], inputs=inputs, force=force)
    fmt_name = format_for(out, fmt)
    if fmt_name == "coreml":  # an .mlpackage is a folder
        outputs.check_folder(out)
    else:
        outputs.check_file(out)
    outputs.refuse_replacing([out], inputs=inputs, force=force)
    tolerance = _tolerance(precision, max_corner_px, max_jaccard_diff, max_confidence_diff, max_flips)
    summary = export_model(checkpoint, fmt_name, out, force=force, atol=atol, precision=precision, real=real,
                           check=check, calibration=calibration, post=post, tolerance=tolerance,
                           say=lambda msg: typer.echo(f"docsynth: {msg}", err=True))
    emit(summary, as_json, format_export(summary))


def _tolerance(precision: str, corner_px: float | None, jaccard: float | None, confidence: float | None,
               flips: float | None = None) -> Any:
    """The precision's tolerance on real photos with the --max-* flags given in place of its
    values; None when no flag is given (the precision's own tolerances apply)."""
    if corner_px is None and jaccard is None and confidence is None and flips is None:
        return None

    default = TOLERANCES.get(precision, TOLERANCES["fp32"])["real"]
    return Tolerance(default.corner_px if corner_px is None else corner_px,
                     default.jaccard if jaccard is None else jaccard, two_sided=default.two_sided,
                     confidence=default.confidence if confidence is None else confidence,
                     flips=default.flips if flips is None else flips)


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
        if a.get("model_flips"):
            conf += f"; a flip (corner or quad on another candidate) in {len(a['model_flips'])} (confidence not compared)"
        lines.append(f"agreement on {a['photos']} {'composites' if name == 'composites' else 'real photos'} "
                     f"({summary['post']}): corners within {a['max_corner_px']:.3f} px{median}{differs}{model}{jac}"
                     f"{conf}; tolerance " + (f"{tol['corner_px']} px, " if tol["corner_px"] is not None else "")
                     + (f"Jaccard within {tol['jaccard']}" if tol["two_sided"]
                        else f"Jaccard at most {tol['jaccard']} lower")
                     + (f", confidence within {tol['confidence']}" if tol.get("confidence") is not None else "")
                     + (f", flips on at most {tol['flips']:.1%} (or one photo)" if tol.get("flips") else ""))
    return "\n".join(lines)
