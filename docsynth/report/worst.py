"""The run report's evaluation data (``evaluate/results.json``) and its worst-photos section: the
photos the model did worst on, the true quad and each method's drawn on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docsynth.errors import DocsynthError
from docsynth.formats import corners as corners_csv
from docsynth.io import read_image
from docsynth.report.html import esc, img, missing
from docsynth.report.run_folder import RunFolder, read_json
from docsynth.viz import caption, draw_quad, fit_height, grid


def _evaluation(run: RunFolder) -> dict[str, Any] | None:
    """evaluate/results.json: {"methods": {name: {count, found, mean_jaccard, mean_mask_iou,
    subsets, images: [{image, subset, jaccard, mask_iou, corners, confidence, reason}]}}}"""
    data = read_json(run.stage_dir("evaluate") / "results.json")
    if not data or not isinstance(data.get("methods"), dict) or not data["methods"]:
        return None
    return data



def section_worst(run: RunFolder, count: int = 8) -> str:
    data = _evaluation(run)
    if data is None or not run.complete("evaluate"):
        return missing(run.why_missing("evaluate") if not run.complete("evaluate")
                       else "The evaluate stage left no per-photo results.")
    names = list(data["methods"])
    by_method = {n: {r["image"]: r for r in data["methods"][n].get("images") or []} for n in names}
    rows = sorted(by_method[names[0]].values(), key=lambda r: r.get("jaccard", 0))[:count]
    truth = _ground_truth(run, data)
    tiles = []
    for row in rows:
        path, gt = truth.get(row["image"], (None, None))
        if path is None:
            continue
        try:
            image = read_image(path)
        except DocsynthError:
            continue
        tile, scale = fit_height(image, 300)
        draw_quad(tile, gt, (60, 190, 60), scale, numbers=False, thickness=3)
        scores = []
        for k, name in enumerate(names[:2]):
            other = by_method[name].get(row["image"]) or {}
            if other.get("corners") is not None:
                draw_quad(tile, other["corners"], (40, 40, 230) if k == 0 else (230, 120, 30), scale,
                          numbers=k == 0, thickness=2 if k == 0 else 1)
            scores.append(f"{name[:14]} {other.get('jaccard', 0):.3f}")
        tiles.append(caption(caption(tile, row["image"]), "  ".join(scores)))
    if tiles:
        legend = ("Green: true quad; red: " + esc(names[0]) + " (corners numbered 0 = top-left, clockwise)"
                  + (f"; blue: {esc(names[1])}" if len(names) > 1 else "") + ".")
        return f"<p>{legend}</p>" + f'<div class="sheet">{img(grid(tiles, 4), "worst cases")}</div>'
    sheet = run.stage_dir("evaluate") / "worst.png"
    if sheet.is_file():
        return f'<div class="sheet">{img(read_image(sheet), "worst cases")}</div>'
    return missing("The photos of this evaluation are no longer where it found them.")


def _ground_truth(run: RunFolder, data: dict[str, Any]) -> dict[str, tuple[Path, Any]]:
    """photo name -> (path, true corners), from the folder the evaluation scored."""
    record = run.records.get("evaluate") or {}
    folder = data.get("data") or (record.get("summary") or {}).get("data")
    if not folder:
        return {}
    folder = Path(folder)
    if not folder.is_absolute() and not folder.is_dir():
        folder = run.root / folder
    try:
        return {p.name: (p, gt) for p, gt in corners_csv.read_folder(folder)}
    except DocsynthError:
        return {}
