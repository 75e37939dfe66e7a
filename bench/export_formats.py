"""Every export format of one checkpoint in one table: size, one-core latency, agreement.

For each format this machine can write (ONNX fp32/fp16/int8 and TorchScript always; TFLite when
litert-torch and ai-edge-litert are installed; Core ML when coremltools is, checked for its
structure only, since Core ML runs on Apple systems only), the checkpoint is exported with
``docsynth.scan.export_model.export_model`` (the code behind ``docsynth export-model``), which runs
the export and the original PyTorch model on the same photos through the same post-processor.
The table gives:

- ``size``: the exported file (folder for Core ML) in MB;
- ``1-core ms``: the exported graph's forward pass, median CPU time on one thread (the runtime
  set to one thread), and PyTorch's for comparison; preprocessing and post-processing are the
  same for every format and not included (see bench/scan_latency.py);
- on ``--real`` photos: the largest and median distance between the export's and the
  original's final corners (after ``refine``), the median distance of the model's own corners
  (heatmap peaks, before post-processing), and the mean SmartDoc Jaccard of the export with
  its difference from the original's;
- on ``--check`` composites: the Jaccard difference;
- ``tolerance``: whether the export is within its precision's tolerance (docs/scan.md).

The bench reports rather than refuses: exports are made with the tolerances lifted and then
judged against them, so a failing format still shows its numbers.

    python bench/export_formats.py                                 # the packaged model, ../shared/realdocs
    python bench/export_formats.py --checkpoint RUN/best.pt --real PHOTOS --json out.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def available() -> list[tuple[str, str]]:
    def has(*modules: str) -> bool:
        try:
            return all(importlib.util.find_spec(m) is not None for m in modules)
        except ModuleNotFoundError:
            return False

    formats = [("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "int8"), ("torchscript", "fp32")]
    if has("litert_torch", "ai_edge_litert"):
        formats.append(("tflite", "fp32"))
    if has("coremltools"):
        formats += [("coreml", "fp32"), ("coreml", "fp16")]
    return formats


def judge(summary: dict, precision: str) -> str:
    from docsynth.errors import DocsynthError
    from docsynth.scan.export_model import TOLERANCES, _enforce

    if "agreement" not in summary:
        return "structure ok"
    try:
        _enforce(summary["agreement"], TOLERANCES[precision], Path(summary["out"]), summary["format"], precision)
    except DocsynthError as exc:
        return "FAIL: " + str(exc).split(": ", 2)[-1]
    return "ok"


def row(summary: dict, verdict: str) -> list[str]:
    def f(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    name = f"{summary['format']} {summary['precision']}"
    size = f"{summary['bytes'] / 1e6:.2f}"
    if "agreement" not in summary:
        return [name, size, "n/a (Apple only)", "", "", "", "", "", verdict]
    real = summary["agreement"].get("real")
    comp = summary["agreement"]["composites"]
    latency = f"{summary['latency_ms']:.1f} (PyTorch {summary['latency_ms_original']:.1f})"
    if real is None:
        return [name, size, latency, "", "", "", "", f(comp["jaccard_diff"], "+.4f"), verdict]
    return [name, size, latency,
            f"{real['max_corner_px']:.3f} / {real['median_corner_px']:.3f}",
            f(real["median_model_corner_px"], ".3f"),
            f"{real['mean_jaccard_export']:.4f}", f(real["jaccard_diff"], "+.4f"),
            f(comp["jaccard_diff"], "+.4f"), verdict]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(REPO / "docsynth" / "assets" / "docsynth-cpu.pt"))
    parser.add_argument("--real", default=str(REPO.parent / "shared" / "realdocs"),
                        help="photos with corners.csv ('' to skip)")
    parser.add_argument("--check", type=int, default=16, help="composites in the agreement check")
    parser.add_argument("--formats", nargs="*", help="e.g. onnx:int8 tflite:fp32 (default: all available)")
    parser.add_argument("--json", help="also write every export's summary to this file")
    args = parser.parse_args(argv)

    from docsynth.scan.export_model import SUFFIXES, Tolerance, export_model

    formats = available() if not args.formats else [tuple(f.split(":")) for f in args.formats]
    real = args.real if args.real and (Path(args.real) / "corners.csv").is_file() else None
    lifted = Tolerance(None, 1.0)
    summaries = []
    header = ["format", "size MB", "1-core ms", "real: corners max / median px", "model corners median px",
              "real: mean Jaccard", "real: diff", "composites: diff", "tolerance"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, precision in formats:
            print(f"exporting {fmt} {precision} ...", file=sys.stderr, flush=True)
            out = Path(tmp) / f"model-{precision}{SUFFIXES[fmt]}"
            summary = export_model(args.checkpoint, fmt, out, precision=precision, real=real,
                                   check=args.check, tolerance=lifted)
            verdict = judge(summary, precision)
            summaries.append({**summary, "verdict": verdict})
            rows.append(row(summary, verdict))
    print(f"checkpoint {args.checkpoint}; real photos: {real or 'none'}; {args.check} composites; "
          "post-processor refine; latency = forward pass, median CPU time on one thread")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        r = r + [""] * (len(header) - len(r))
        print("| " + " | ".join(r) + " |")
    missing = sorted({"tflite", "coreml"} - {f for f, _ in formats})
    if missing:
        print(f"not installed here: {', '.join(missing)} (pip install 'docsynth[{missing[0]}]')")
    if args.json:
        Path(args.json).write_text(json.dumps(summaries, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
