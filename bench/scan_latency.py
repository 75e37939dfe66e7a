"""Scan latency on ONE CPU core: PyTorch vs ONNX Runtime, per backbone, post-processing apart.

For each backbone plugin (untrained weights: the timing does not depend on them) or a given
checkpoint, one photo goes through the whole scan path and each part is timed separately:

- ``model``: preprocessing (resize, RGB, normalise) + forward + decoding to photo-size
  probabilities (+ corners), i.e. :func:`docsynth.scan.model_contract.predict` or the ONNX backend;
- ``post``: the post-processor (``--post``, default refine) on a typical prediction: for
  untrained backbones, the bench photo's page as a trained model at that input size would
  predict it (see :func:`typical_prediction`); for ``--checkpoint``, the model's own;
- ``total``: both, i.e. one photo from decoded pixels to corners (measured end to end for
  ``--checkpoint``).

torch runs with ``torch.set_num_threads(1)``, ONNX Runtime with ``intra_op_num_threads=1``.
Numbers are medians over ``--repeat`` runs after one warm-up, in CPU time of the process
(``time.process_time``): with one thread that is what one idle core would take, and it stays
meaningful on a busy shared machine where wall time is not; ``--wall`` measures wall time
instead. Photo decoding and the page warp are not included (they depend on the file, not the
model).

    python bench/scan_latency.py                       # every backbone at --size 256
    python bench/scan_latency.py --backbones compact lraspp_mobilenet_v3_large --size 256 384
    python bench/scan_latency.py --checkpoint docsynth/assets/docsynth-cpu.pt --photo a.jpg
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLOCK = time.process_time  # CPU time of this single-threaded process; see --wall


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up (allocations, lazy init)
    times = []
    for _ in range(repeat):
        t0 = CLOCK()
        fn()
        times.append((CLOCK() - t0) * 1000)
    return statistics.median(times)


BENCH_QUAD = np.array([[420.3, 260.1], [1230.7, 310.8], [1190.2, 1020.4], [380.6, 960.9]])


def photo_for_bench(path: str | None):
    from docsynth.scan.scanner import read_photo

    if path:
        return read_photo(path)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from scan_fixtures import synthetic_photo  # a 1600x1200 page photo, like a phone's

    return synthetic_photo(BENCH_QUAD, (1600, 1200), seed=0)


def typical_prediction(photo, size: int, with_corners: bool):
    """What a trained model at ``size`` px predicts for the bench photo: the page (a few pixels
    off) at the model's resolution, upsampled; heatmap corners for corner models. Untrained
    weights predict noise, on which post-processing would time its "no page" exit instead."""
    import cv2

    from docsynth.scan.model_contract import Prediction

    h, w = photo.shape[:2]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from scan_fixtures import coverage

    coarse = BENCH_QUAD + np.random.default_rng(0).uniform(-6, 6, (4, 2))
    small = coverage(coarse * (size / w, size / h), (size, size))
    prob = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    corners = coarse if with_corners else None
    return Prediction(prob, corners, np.full(4, 0.9) if with_corners else None)


def bench_one(label: str, ckpt_path: Path, photo, post_name: str, repeat: int, onnx: bool,
              trained: bool) -> list[dict]:
    from docsynth import plugins
    from docsynth.options import build
    from docsynth.scan.export_model import export_model
    from docsynth.scan.model_contract import input_hw
    from docsynth.scan.scanner import OnnxBackend, load_backend

    post = plugins.get("postprocessor", post_name)
    options = build(post, {})  # what the scanner hands the post-processor: its defaults
    rows = []
    backends = [("pytorch", lambda: load_backend(ckpt_path))]
    if onnx:
        onnx_file = Path(tempfile.mkdtemp()) / "model.onnx"
        export_model(ckpt_path, "onnx", onnx_file)
        backends.append(("onnxruntime", lambda: OnnxBackend(onnx_file, threads=1)))
    for runtime, make in backends:
        backend = make()
        pred = backend.predict(photo)
        if not trained:
            pred = typical_prediction(photo, input_hw(backend.meta)[0], pred.corners is not None)
        extra = {"corners": pred.corners, "corner_scores": pred.corner_scores}
        model_ms = median_ms(lambda backend=backend: backend.predict(photo), repeat)
        post_ms = median_ms(lambda pred=pred, extra=extra: post.find_quad(pred.page_prob, photo, options, extra), repeat)
        row = {"model": label, "runtime": runtime, "model_ms": round(model_ms, 1),
               "post_ms": round(post_ms, 1), "total_ms": round(model_ms + post_ms, 1)}
        if trained:  # the real thing end to end

            def whole(backend=backend):
                p = backend.predict(photo)
                post.find_quad(p.page_prob, photo, options, {"corners": p.corners, "corner_scores": p.corner_scores})

            row["total_ms"] = round(median_ms(whole, repeat), 1)
        rows.append(row)
        print(f"{label:36s} {runtime:12s} model {model_ms:7.1f} ms  post {post_ms:5.1f} ms  "
              f"total {row['total_ms']:7.1f} ms", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="*", help="backbone plugins (default: all registered)")
    ap.add_argument("--size", type=int, nargs="*", default=[256], help="model input sizes")
    ap.add_argument("--checkpoint", help="time this checkpoint instead of untrained backbones")
    ap.add_argument("--photo", help="photo to scan (default: a synthetic 1600x1200 photo)")
    ap.add_argument("--post", default="refine", help="post-processor (default refine)")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--no-onnx", action="store_true", help="PyTorch only")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    ap.add_argument("--wall", action="store_true", help="wall-clock time instead of CPU time")
    args = ap.parse_args()
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter

    import cv2
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    cv2.setNumThreads(1)
    from docsynth import plugins
    from docsynth.options import build
    from docsynth.scan.classical import find_page
    from docsynth.scan.model_contract import REFERENCE_MEAN, REFERENCE_STD, save_checkpoint

    photo = photo_for_bench(args.photo)
    print(f"photo {photo.shape[1]}x{photo.shape[0]}, post-processor {args.post}, one thread, "
          f"median {'wall' if args.wall else 'CPU'} time of {args.repeat}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    rows = []
    tmp = Path(tempfile.mkdtemp())
    if args.checkpoint:
        rows += bench_one(Path(args.checkpoint).name, Path(args.checkpoint), photo, args.post, args.repeat,
                          not args.no_onnx, trained=True)
    else:
        for name in args.backbones or plugins.names("backbone"):
            backbone = plugins.get("backbone", name)
            for size in args.size:
                model = backbone.build(2, "none", build(backbone, {})).eval()
                ckpt = tmp / f"{name}-{size}.pt"
                save_checkpoint(ckpt, model, {"backbone": name, "backbone_options": {}, "num_classes": 2,
                                              "input_size": size, "mean": list(REFERENCE_MEAN),
                                              "std": list(REFERENCE_STD)})
                repeat = args.repeat if size * size * (4 if "resnet" in name else 1) < 400_000 else max(3, args.repeat // 3)
                rows += bench_one(f"{name} @{size}", ckpt, photo, args.post, repeat, not args.no_onnx,
                                  trained=False)
    classical_ms = median_ms(lambda: find_page(photo), args.repeat)
    print(f"{'classical baseline (no model)':36s} {'opencv':12s} total {classical_ms:7.1f} ms")
    rows.append({"model": "classical", "runtime": "opencv", "model_ms": 0.0, "post_ms": round(classical_ms, 1),
                 "total_ms": round(classical_ms, 1)})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
