"""Does coarse-to-fine refinement help on real photos? Measured without a trained model.

A trained model's page mask is simulated from the ground truth of each real photo: every
corner is moved by a random offset of up to ``--error`` pixels (the size of a low-resolution
model's mistakes), the moved quad is rasterised at the model's resolution (``--size``, default
256: what the model sees) and upsampled to the photo, as :func:`docsynth.scan.model_contract.predict` does.
The post-processors then turn that map into corners, and the SmartDoc Jaccard index against the
annotation says how close they got. `reference` and `robust` only see the map; `refine` also
looks at the photo's own edges, so it is the only one that can undo the simulated error.
``--heatmaps`` hands the moved corners to `refine` as corner-heatmap peaks instead.

    python bench/refine_realdocs.py ../shared/realdocs --error 4 8 16

This measures the post-processing on real photos' edges (shadows, texture, text near the page
border), not a model: the model's own errors (e.g. a missed page) are not simulated.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="folder with images and corners.csv")
    ap.add_argument("--error", type=float, nargs="*", default=[4.0, 8.0, 16.0],
                    help="largest corner offset in photo pixels (one run per value)")
    ap.add_argument("--size", type=int, default=256, help="simulated model resolution")
    ap.add_argument("--seeds", type=int, default=3, help="random offsets per photo")
    ap.add_argument("--heatmaps", action="store_true", help="also pass the moved corners as heatmap peaks")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from scan_fixtures import coverage

    from docsynth import plugins
    from docsynth.evaluate.smartdoc import subset_of
    from docsynth.formats.corners import read_folder
    from docsynth.options import build
    from docsynth.scan.scanner import read_photo
    from docsynth.scoring import jaccard_smartdoc

    items = [(p, gt, read_photo(p)) for p, gt in read_folder(args.data)]
    posts = ["reference", "robust", "refine"]
    print(f"{len(items)} photos, model resolution {args.size}, {args.seeds} offsets per photo")
    print(f"{'max error px':>12} {'post':>10} {'mean J':>8} " + " ".join(f"{s:>10}" for s in
                                                                    sorted({subset_of(p.name) for p, _, _ in items}))
          + f" {'corner px':>9} {'ms':>6}")
    for err in args.error:
        scores = {name: [] for name in posts}
        subsets = {name: {} for name in posts}
        corner_err = {name: [] for name in posts}
        times = {name: [] for name in posts}
        for index, (path, gt, photo) in enumerate(items):
            h, w = photo.shape[:2]
            for seed in range(args.seeds):
                rng = np.random.default_rng([index, seed])
                coarse = gt + rng.uniform(-err, err, (4, 2))
                sx, sy = args.size / w, args.size / h
                small = coverage(coarse * (sx, sy), (args.size, args.size))
                prob = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
                extra = {"corners": coarse, "corner_scores": np.full(4, 0.9)} if args.heatmaps else {}
                for name in posts:
                    t0 = time.process_time()
                    post = plugins.get("postprocessor", name)
                    quad = post.find_quad(prob, photo, build(post, {}), extra if name == "refine" else {})
                    times[name].append(time.process_time() - t0)
                    j = jaccard_smartdoc(gt, quad.corners)
                    scores[name].append(j)
                    subsets[name].setdefault(subset_of(path.name), []).append(j)
                    if quad.corners is not None:
                        from docsynth.geometry import order_corners

                        corner_err[name].append(np.abs(order_corners(quad.corners) - order_corners(gt)).max())
        for name in posts:
            sub = " ".join(f"{np.mean(v):10.4f}" for _, v in sorted(subsets[name].items()))
            print(f"{err:12.1f} {name:>10} {np.mean(scores[name]):8.4f} {sub} "
                  f"{np.median(corner_err[name]) if corner_err[name] else float('nan'):9.2f} "
                  f"{1000 * np.median(times[name]):6.1f}", flush=True)


if __name__ == "__main__":
    main()
