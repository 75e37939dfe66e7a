"""`docsynth stats`: how do synthetic samples compare with real photos?

For each labelled image (a generated sample with a page, or a photo with ``corners.csv``):

- ``page_area``: share of the frame the corner quad covers (%);
- ``corner_angle``: mean |interior angle - 90| of the quad (degrees; perspective strength);
- ``rotation``: in-plane angle of the TL->TR edge (degrees);
- ``page_brightness`` / ``background_brightness``: mean grey inside / outside the quad;
- ``contrast``: page minus background brightness;
- ``saturation``: mean HSV saturation of the frame;
- ``sharpness``: variance of the Laplacian of the grey frame at 640 px on the longer side.

Images are first scaled to 640 px on the longer side so that sizes do not bias the results.
With a real set, each statistic gets the two medians and the two-sample Kolmogorov-Smirnov
distance (0: same distribution, 1: disjoint). ``--plot`` draws their histograms (``viz.raster_chart``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth.errors import DocsynthError
from docsynth.formats.manifest import Item, read_items
from docsynth.geometry import quad_area, quad_mask
from docsynth.io import read_image, write_image
from docsynth.progress import Progress
from docsynth.viz import Panel, raster_chart

STATS = {
    "page_area": "% of frame",
    "corner_angle": "deg from 90",
    "rotation": "deg",
    "page_brightness": "grey 0-255",
    "background_brightness": "grey 0-255",
    "contrast": "grey, page minus background: -255 to 255",
    "saturation": "0-255",
    "sharpness": "Laplacian var",
}
WORK_SIDE = 640


def image_stats(image: np.ndarray, corners: np.ndarray) -> dict[str, float]:
    h, w = image.shape[:2]
    s = WORK_SIDE / max(h, w)
    if s < 1:
        image = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        corners = corners * (image.shape[1] / w, image.shape[0] / h)
        h, w = image.shape[:2]
    c = np.asarray(corners, np.float64)
    angles = []
    for k in range(4):
        a, b = c[k - 1] - c[k], c[(k + 1) % 4] - c[k]
        cos = np.dot(a, b) / max(1e-9, np.linalg.norm(a) * np.linalg.norm(b))
        angles.append(abs(math.degrees(math.acos(float(np.clip(cos, -1, 1)))) - 90))
    top = c[1] - c[0]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    inside = quad_mask(c, (h, w)) > 0
    page = float(grey[inside].mean()) if inside.any() else math.nan
    back = float(grey[~inside].mean()) if (~inside).any() else math.nan
    return {
        "page_area": 100 * quad_area(c) / (w * h),
        "corner_angle": float(np.mean(angles)),
        "rotation": math.degrees(math.atan2(top[1], top[0])),
        "page_brightness": page,
        "background_brightness": back,
        "contrast": page - back,
        "saturation": float(cv2.cvtColor(image, cv2.COLOR_BGR2HSV)[..., 1].mean()),
        "sharpness": float(cv2.Laplacian(grey, cv2.CV_32F).var()),
    }


def measure(folder: str | Path, limit: int | None = None, seed: int = 0,
            progress: Progress | None = None) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Per-statistic values over a dataset's images with a page (a seeded subset of ``limit``)."""
    items: list[Item] = read_items(folder)
    counts = {"images": len(items), "negatives": sum(1 for i in items if i.corners is None)}
    items = [i for i in items if i.corners is not None]
    if limit is not None and len(items) > limit:
        rng = np.random.default_rng(seed)
        items = [items[k] for k in np.sort(rng.choice(len(items), size=limit, replace=False))]
    values: dict[str, list[float]] = {k: [] for k in STATS}
    for item in items:
        for key, value in image_stats(read_image(item.image), item.corners).items():  # type: ignore[arg-type]  # pages only
            if math.isfinite(value):
                values[key].append(value)
        if progress:
            progress.advance()
    counts["measured"] = len(items)
    return values, counts


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "mean": None, "median": None, "p10": None, "p90": None}
    v = np.asarray(values, np.float64)
    return {"n": int(v.size), "mean": round(float(v.mean()), 3), "median": round(float(np.median(v)), 3),
            "p10": round(float(np.percentile(v, 10)), 3), "p90": round(float(np.percentile(v, 90)), 3)}


def ks_distance(a: list[float], b: list[float]) -> float | None:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    if not a or not b:
        return None
    a_s, b_s = np.sort(a), np.sort(b)
    grid = np.concatenate([a_s, b_s])
    cdf_a = np.searchsorted(a_s, grid, side="right") / len(a_s)
    cdf_b = np.searchsorted(b_s, grid, side="right") / len(b_s)
    return round(float(np.abs(cdf_a - cdf_b).max()), 3)


def compare(synthetic: dict[str, list[float]], real: dict[str, list[float]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in STATS:
        entry: dict[str, Any] = {"unit": STATS[key], "dataset": summary(synthetic[key])}
        if real is not None:
            entry["real"] = summary(real[key])
            entry["ks"] = ks_distance(synthetic[key], real[key])
        out[key] = entry
    return out


def plot(synthetic: dict[str, list[float]], real: dict[str, list[float]] | None, out: str | Path,
         bins: int = 16) -> None:
    """One panel per statistic: the share of images per bin (a line through the bin centres), the
    dataset first and the real photos second, over the range of both."""
    panels = []
    for key, unit in STATS.items():
        groups = {"dataset": synthetic[key]} | ({"real": real[key]} if real is not None else {})
        every = [v for values in groups.values() for v in values]
        series = {}
        if every:
            lo, hi = float(min(every)), float(max(every))
            hi = hi if hi > lo else lo + 1
            centres = lo + (np.arange(bins) + 0.5) * (hi - lo) / bins
            for name, values in groups.items():
                if values:
                    hist, _ = np.histogram(values, bins=bins, range=(lo, hi))
                    series[name] = list(zip(centres.tolist(), (hist / len(values)).tolist(), strict=True))
        panels.append(Panel(key, series, xlabel=unit))
    write_image(out, raster_chart(panels, columns=4, size=(320, 200)))


def run_stats(folder: str | Path, real: str | Path | None = None, plot_to: str | Path | None = None,
              limit: int | None = 500, seed: int = 0,
              progress: Progress | None = None) -> dict[str, Any]:
    if plot_to is not None and Path(plot_to).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise DocsynthError(f"{plot_to}: --plot must end in .png or .jpg")
    synthetic, counts = measure(folder, limit, seed, progress)
    if not counts["measured"]:
        raise DocsynthError(f"{folder}: no images with a page to measure")
    real_values, real_counts = (measure(real, None, seed, progress) if real is not None else (None, None))
    result: dict[str, Any] = {"dataset": str(folder), "counts": counts, "stats": compare(synthetic, real_values)}
    if real is not None:
        result["real"] = str(real)
        result["real_counts"] = real_counts
    if plot_to is not None:
        plot(synthetic, real_values, plot_to)
        result["plot"] = str(plot_to)
    return result


def format_table(result: dict[str, Any]) -> str:
    has_real = "real" in result
    head = f"{'statistic':24s} {'dataset median':>14s} {'p10-p90':>17s}"
    if has_real:
        head += f" {'real median':>12s} {'p10-p90':>17s} {'KS':>6s}"
    lines = [f"{result['dataset']}: {result['counts']['measured']} images with a page "
             f"({result['counts']['negatives']} negatives)"
             + (f"; real: {result['real']} ({result['real_counts']['measured']} images)" if has_real else ""), head]

    def cell(s: dict[str, Any]) -> str:
        if s["median"] is None:
            return f"{'-':>14s} {'-':>17s}"
        return f"{s['median']:14.2f} {s['p10']:8.2f}-{s['p90']:<8.2f}"

    for key, entry in result["stats"].items():
        line = f"{key:24s} {cell(entry['dataset'])}"
        if has_real:
            ks = entry["ks"]
            line += f" {cell(entry['real'])[2:]} {'' if ks is None else f'{ks:6.2f}'}"
        lines.append(line)
    return "\n".join(lines)
