"""Where does a sample's time go? A per-step cost table of `generate`, ms per sample, one core.

It runs the sample stream of `bench/generate_throughput.py`'s inputs (or ``--documents`` /
``--backgrounds`` folders) and times, exclusive of what they call inside, every part of a
sample: the stream (page and background loading, labels), each phase of the compositor
(frame, page paste, sheets, hands, cut-outs), each augmentation step, and the encoding of the
image and mask files. The table divides by the number of samples, so a step that runs in 25%
of samples at 20 ms shows 5 ms: the sum is the cost per sample. ``docs/compose.md`` keeps the
table of the last measured version; when a step gets slower, the difference shows here.

    python bench/generate_steps.py [--samples 300] [--preset realistic] [--labels dewarp,text] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate_throughput import config, make_inputs, pin_one_core  # noqa: E402

TOTALS: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)
_STACK: list[float] = []  # time spent in children of each open timer


def timed(name: str, fn):
    """``fn`` timing itself under ``name``, exclusive of other timed functions it calls."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _STACK.append(0.0)
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.process_time() - t0
            children = _STACK.pop()
            TOTALS[name] += spent - children
            CALLS[name] += 1
            if _STACK:
                _STACK[-1] += spent

    return wrapper


def patch(owner, attr: str, name: str) -> None:
    setattr(owner, attr, timed(name, getattr(owner, attr)))


def instrument() -> None:
    """Wrap the stream, the compositors' phases, every step and the encoder in timers."""
    from docsynth_compose import compositor_realistic as real
    from docsynth_compose import steps as steps_mod
    from docsynth_compose.steps import paste, sheets

    from docsynth import io
    from docsynth.generate import dewarp, labels, pools, shards

    patch(pools.DocumentPool, "load", "stream: page load")
    patch(pools.BackgroundPool, "load", "stream: background load")
    patch(labels, "finish_labels", "stream: finish labels")
    from docsynth.generate import stream
    stream.finish_labels = labels.finish_labels
    patch(dewarp, "label_files", "labels: dewarp/text files")
    shards.label_files = dewarp.label_files
    patch(io, "encode_image", "write: encode image")
    shards.encode_image = io.encode_image
    patch(io, "encode_mask", "write: encode mask")
    shards.encode_mask = io.encode_mask
    patch(io, "atomic_write_bytes", "write: files")
    shards.atomic_write_bytes = io.atomic_write_bytes
    for attr in ("desk_surface", "make_card", "make_receipt", "camera_quad", "random_curl", "random_fold",
                 "book_spread", "larger_sheet", "shade_gutter", "draw_palm", "thumb", "page_map", "_light_surface"):
        patch(real, attr, f"compose: {attr.strip('_')}")
    for attr in ("stacked_sheets", "other_document"):
        patch(real, attr, f"compose: {attr}")
    real.RealisticCompositor._background = staticmethod(timed("compose: background",
                                                              real.RealisticCompositor._background))
    patch(sheets.SheetMemo, "sheet", "compose: sheet")
    patch(real.RealisticCompositor, "_paste", "compose: page paste (light, shadow)")
    patch(real, "composite", "compose: page paste (blend)")
    patch(paste, "warp_page", "compose: page paste (warp)")
    real.warp_page = paste.warp_page
    patch(real.RealisticCompositor, "compose", "compose: rest")
    for cls in list(steps_mod.STEPS.values()):
        cls.run = timed(f"step: {cls.name}", cls.run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--preset", default="realistic")
    ap.add_argument("--labels", default="", help="comma-separated generate.labels (dewarp,text)")
    ap.add_argument("--documents", type=Path, default=None)
    ap.add_argument("--backgrounds", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    pin_one_core()
    import cv2

    cv2.setNumThreads(1)
    root = args.work or Path(tempfile.mkdtemp(prefix="docsynth-steps-"))
    root.mkdir(parents=True, exist_ok=True)
    pages, bgs = make_inputs(root)
    pages, bgs = args.documents or pages, args.backgrounds or bgs

    from docsynth.generate.shards import generate

    labels = [x for x in args.labels.split(",") if x]

    def cfg(count: int, out: Path):
        return config(pages, bgs, out, args.preset, count, labels)

    for out in (root / "warm", root / "steps"):
        shutil.rmtree(out, ignore_errors=True)  # a finished dataset would just be resumed
    generate(cfg(8, root / "warm"), force=True)  # imports and first-call costs outside the table
    instrument()
    t0 = time.process_time()
    generate(cfg(args.samples, root / "steps"), force=True)
    total = (time.process_time() - t0) / args.samples * 1000
    rows = sorted(((name, TOTALS[name] / args.samples * 1000, CALLS[name]) for name in TOTALS),
                  key=lambda r: -r[1])
    measured = sum(ms for _, ms, _ in rows)
    result = {"preset": args.preset, "samples": args.samples, "labels": args.labels or None,
              "ms_per_sample": round(total, 2), "other_ms": round(total - measured, 2),
              "steps": {name: {"ms": round(ms, 2), "calls": calls} for name, ms, calls in rows}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.preset}: {total:.1f} ms per sample ({args.samples} samples, 1 core, CPU time)")
    print(f"{'part':34s} {'ms/sample':>9s} {'calls':>6s}")
    for name, ms, calls in rows:
        print(f"{name:34s} {ms:9.2f} {calls:6d}")
    print(f"{'(generate loop, untimed)':34s} {total - measured:9.2f}")


if __name__ == "__main__":
    main()
