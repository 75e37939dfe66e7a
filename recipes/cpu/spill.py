"""Where a model's page map goes wrong, per subset: spill (page predicted outside the true page)
and miss (true page not predicted), each as a share of the true page's area.

Jaccard says how far a quad is off; this says which way the page map errs. It is how the v3
regression on light desks was diagnosed (docs/cpu-model.md): v3's maps spread beyond the page.

    python recipes/cpu/spill.py ../shared/realdocs docsynth/assets/docsynth-cpu.pt runs/v31-s41/last.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def spill_and_miss(folder: Path, checkpoint: Path) -> dict[str, tuple[float, float]]:
    """subset -> (mean spill, mean miss) over the photos of ``folder`` that have corners."""
    from docsynth.formats.corners import read_folder
    from docsynth.geometry import quad_mask
    from docsynth.scan.model_contract import load_model, predict

    model, meta = load_model(checkpoint)
    per: dict[str, list[tuple[float, float]]] = {}
    for path, corners in read_folder(folder):
        image = cv2.imread(str(path))
        truth = quad_mask(np.asarray(corners, np.float64), image.shape[:2]) > 0
        page = predict(model, meta, image).page_prob > 0.5
        area = max(1, int(truth.sum()))
        per.setdefault(path.name.split("_")[0], []).append((float((page & ~truth).sum() / area),
                                                       float((truth & ~page).sum() / area)))
    return {k: (float(np.mean([s for s, _ in v])), float(np.mean([m for _, m in v]))) for k, v in sorted(per.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="photos with corners.csv (images/ beside it)")
    ap.add_argument("checkpoints", nargs="+", type=Path)
    args = ap.parse_args()
    for ckpt in args.checkpoints:
        result = spill_and_miss(args.folder, ckpt)
        print(ckpt, "  ".join(f"{k} spill {s:.3f} miss {m:.3f}" for k, (s, m) in result.items()))


if __name__ == "__main__":
    main()
