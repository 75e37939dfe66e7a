"""Scoring page quads on real photos: the SmartDoc 2015 protocol, mask IoU, reports.

SmartDoc 2015 (challenge 1) scores a predicted quad in the *document's* frame: the homography
that takes the ground-truth quad to a rectangle also maps the predicted quad, and the score is
the Jaccard index (intersection over union) of the two polygons there. A missing prediction
scores 0, and so does a self-intersecting one (or one that crosses the page plane's horizon).
The mean over images is the headline number.

The rectangle: SmartDoc used each document's physical size; we use the ground-truth quad's own
mean side lengths (width = mean of top and bottom, height = mean of left and right). The choice
cannot change the score: two rectangles differ by an axis scaling, an affine map, and affine
maps keep ratios of areas, so every rectangle gives the same Jaccard index.

Beside it, ``mask_iou`` is the IoU of the predicted page region (the model's mask when there is
one, else the predicted quad) and the ground-truth quad, in image pixels, clipped to the photo.

Training imports :func:`jaccard_smartdoc` for its real-photo metrics.
"""

from __future__ import annotations

import csv
import io as _io
import math
from pathlib import Path
from typing import Any, Callable, Iterable

import cv2
import numpy as np

from docsynth.errors import DocsynthError
from docsynth.formats import corners as corners_csv
from docsynth.geometry import cross, is_simple_quad, mask_iou, polygon_area, quad_mask
from docsynth.viz import grid

# ---------------------------------------------------------------------------------------------
# Polygons
# ---------------------------------------------------------------------------------------------


def clip_polygon(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of ``subject`` (any simple polygon) inside the convex
    polygon ``clip``. For a concave subject the result may contain zero-width bridges, which
    do not change its area."""
    clip = np.asarray(clip, dtype=np.float64)
    if polygon_area(clip) < 0:
        clip = clip[::-1]
    out = [np.asarray(p, dtype=np.float64) for p in np.asarray(subject, dtype=np.float64)]
    for k in range(len(clip)):
        a, b = clip[k], clip[(k + 1) % len(clip)]
        pts, out = out, []
        if not pts:
            break
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            cur_in, prev_in = cross(a, b, cur) >= 0, cross(a, b, prev) >= 0
            if cur_in != prev_in:
                out.append(_line_cross(prev, cur, a, b))
            if cur_in:
                out.append(cur)
    return np.array(out).reshape(-1, 2)


def _line_cross(p: np.ndarray, q: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where segment pq crosses the infinite line ab."""
    dp, dq = cross(a, b, p), cross(a, b, q)
    t = dp / (dp - dq)
    return p + t * (q - p)


def polygon_jaccard(subject: np.ndarray, convex: np.ndarray) -> float:
    """Intersection over union of a simple polygon and a convex polygon."""
    inter = abs(polygon_area(clip_polygon(subject, convex)))
    union = abs(polygon_area(subject)) + abs(polygon_area(convex)) - inter
    return float(inter / union) if union > 0 else 0.0


# ---------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------


def document_frame(gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(homography taking the ground-truth quad to a rectangle, that rectangle's corners)."""
    g = np.asarray(gt, dtype=np.float64).reshape(4, 2)
    width = 0.5 * (np.hypot(*(g[1] - g[0])) + np.hypot(*(g[2] - g[3])))
    height = 0.5 * (np.hypot(*(g[3] - g[0])) + np.hypot(*(g[2] - g[1])))
    rect = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    return cv2.getPerspectiveTransform(g.astype(np.float32), rect.astype(np.float32)).astype(np.float64), rect


def jaccard_smartdoc(gt: np.ndarray, pred: np.ndarray | None) -> float:
    """SmartDoc 2015 score of one prediction (see the module docstring); ``pred`` None = 0."""
    if not is_simple_quad(gt):
        raise ValueError("ground-truth quad is degenerate or self-intersecting")
    if pred is None or not is_simple_quad(pred):
        return 0.0
    h, rect = document_frame(gt)
    p = np.hstack([np.asarray(pred, dtype=np.float64).reshape(4, 2), np.ones((4, 1))]) @ h.T
    if (p[:, 2] <= 1e-12).any():  # beyond the horizon of the page plane: hopelessly wrong
        return 0.0
    mapped = p[:, :2] / p[:, 2:]
    if not is_simple_quad(mapped):
        return 0.0
    return polygon_jaccard(mapped, rect)


def image_mask_iou(gt: np.ndarray, size: tuple[int, int], pred: np.ndarray | None = None,
                   mask: np.ndarray | None = None) -> float:
    """IoU in image pixels of the predicted page (``mask`` if given, else the ``pred`` quad;
    nothing = empty) and the ground-truth quad; ``size`` is (width, height)."""
    w, h = size
    truth = quad_mask(gt, (h, w))
    if mask is not None:
        predicted = np.asarray(mask) > 0
    elif pred is not None and is_simple_quad(pred):
        predicted = quad_mask(pred, (h, w))
    else:
        predicted = np.zeros((h, w), bool)
    return mask_iou(predicted, truth)


def subset_of(name: str) -> str:
    """The subset an image belongs to: its file name up to the first underscore."""
    stem = Path(name).name
    return stem.split("_", 1)[0] if "_" in stem else "other"


def evaluate_predictions(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Score a list of predictions.

    Each record: ``image`` (name), ``gt`` (4x2), ``pred`` (4x2 or None), ``size`` (width, height),
    optional ``mask`` (HxW predicted page mask), ``confidence``, ``reason``. Returns the means,
    per-subset means and one row per image."""
    rows = []
    for rec in records:
        pred = None if rec.get("pred") is None else np.asarray(rec["pred"], dtype=np.float64)
        gt = np.asarray(rec["gt"], dtype=np.float64)
        rows.append({
            "image": rec["image"],
            "subset": subset_of(rec["image"]),
            "jaccard": jaccard_smartdoc(gt, pred),
            "mask_iou": image_mask_iou(gt, tuple(rec["size"]), pred, rec.get("mask")),
            "corners": None if pred is None else np.round(pred, 2).tolist(),
            "confidence": float(rec.get("confidence", 0.0 if pred is None else 1.0)),
            "reason": rec.get("reason", ""),
        })
    return summarise(rows)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def means(sel: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(sel)
        return {"count": n,
                "mean_jaccard": float(np.mean([r["jaccard"] for r in sel])) if n else math.nan,
                "mean_mask_iou": float(np.mean([r["mask_iou"] for r in sel])) if n else math.nan,
                "found": sum(r["corners"] is not None for r in sel)}

    subsets = sorted({r["subset"] for r in rows})
    return {**means(rows), "subsets": {s: means([r for r in rows if r["subset"] == s]) for s in subsets},
            "calibration": calibration(rows), "images": rows}


WRONG_BELOW = 0.9  # a quad with Jaccard under this is a wrong answer
CONFIDENT = 0.5  # a quad with confidence at least this is one the method vouches for


def calibration(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Is a confident answer a right one? Among quads with confidence >= 0.5: how many, and the
    share of them that are wrong (Jaccard < 0.9); also the share of right answers that were
    given with low confidence (what a threshold at 0.5 would throw away)."""
    found = [r for r in rows if r["corners"] is not None]
    sure = [r for r in found if r["confidence"] >= CONFIDENT]
    right = [r for r in found if r["jaccard"] >= WRONG_BELOW]
    wrong_sure = sum(r["jaccard"] < WRONG_BELOW for r in sure)
    return {"confident": len(sure),
            "wrong_among_confident": (wrong_sure / len(sure)) if sure else math.nan,
            "right_with_low_confidence": (sum(r["confidence"] < CONFIDENT for r in right) / len(right)) if right else math.nan}


# ---------------------------------------------------------------------------------------------
# Ground truth files and running a method over a folder
# ---------------------------------------------------------------------------------------------


# A method: BGR photo -> (Quad, predicted page mask or None)
Method = Callable[[np.ndarray], tuple[Any, "np.ndarray | None"]]


def evaluate_method(method: Method, items: list[tuple[Path, np.ndarray]],
                    progress: Callable[[int], None] | None = None,
                    skipped: dict[Path, str] | None = None,
                    warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Score ``method`` on ``items``. With a ``skipped`` dict, an unreadable photo is recorded
    there (path -> one-line reason, ``warn`` told once) and left out instead of stopping the
    evaluation; photos already in it are left out without being read again, so every method
    is scored on the same photos. Without it, an unreadable photo raises DocsynthError."""
    from docsynth.scan.scanner import read_photo

    records = []
    for path, gt in items:
        if skipped is not None and path in skipped:
            if progress:
                progress(1)
            continue
        try:
            image = read_photo(path)
        except DocsynthError as exc:
            if skipped is None:
                raise
            skipped[path] = str(exc).strip().splitlines()[0]
            if warn:
                warn(f"{skipped[path]}; skipped, the other photos are scored")
            if progress:
                progress(1)
            continue
        quad, mask = method(image)
        records.append({"image": path.name, "gt": gt, "pred": quad.corners,
                        "size": (image.shape[1], image.shape[0]), "mask": mask,
                        "confidence": quad.confidence, "reason": quad.reason})
        if progress:
            progress(1)
    return evaluate_predictions(records)


def classical_method(image: np.ndarray) -> tuple[Any, None]:
    from docsynth.scan.classical import find_page

    return find_page(image), None


def run_evaluation(folder: str | Path, checkpoint: str | Path | None, *, post: str = "refine",
                   post_options: dict[str, Any] | None = None, baseline: str | None = None,
                   out: str | Path | None = None, worst: int = 8, force: bool = False,
                   progress: Any = None, note: Callable[[str], None] | None = None,
                   remark: str = "", warn: Callable[[str], None] | None = None,
                   packaged: bool = False) -> dict[str, Any]:
    """What `docsynth evaluate` does (and the `evaluate` stage of `docsynth run` can call).

    Scores the model (``checkpoint``; None = the packaged model) and the optional baseline on
    ``folder``, writes the report to ``out`` (when given) and returns it. Without a checkpoint
    and without a packaged model, a baseline is scored alone (``note`` says so); with no
    baseline either, the missing model is an error. ``progress``: an object with ``start(total)``
    and ``advance(n)``, like :class:`docsynth.progress.Bar`. ``remark`` is stored in the report
    (e.g. that the photos are synthetic). A photo that cannot be read is skipped: ``warn`` gets
    one line naming it, and the report lists it under ``skipped``; when no photo can be read,
    DocsynthError. ``packaged`` also scores the packaged model (method ``packaged:<post>``,
    after the baseline) when ``checkpoint`` is another model; the report's ``packaged`` entry
    describes it."""
    from docsynth.scan.scanner import PACKAGED_MODEL, Scanner, load_backend, packaged_model_available

    if out is not None and (Path(out) / "results.json").exists() and not force:
        raise DocsynthError(f"{Path(out) / 'results.json'}: exists from an earlier evaluation; pass --force "
                            "to replace it or choose another --out")
    if baseline not in (None, "classical"):
        raise DocsynthError(f"--baseline {baseline!r}: the only baseline is 'classical'")
    packaged = bool(packaged and checkpoint is not None)  # without a checkpoint the model is the packaged one
    if packaged and not packaged_model_available():
        raise DocsynthError(f"evaluate.packaged: no packaged model is installed ({PACKAGED_MODEL.with_suffix('.onnx')} "
                            f"and {PACKAGED_MODEL} are missing); set evaluate.packaged: false")
    items = corners_csv.read_folder(folder)
    methods: dict[str, Method] = {}
    if checkpoint is None and not PACKAGED_MODEL.is_file() and baseline:
        if note:
            note(f"no packaged model is installed ({PACKAGED_MODEL}); scoring the {baseline} baseline only; "
                 "pass CHECKPOINT to score a model")
    else:
        methods[f"model:{post}"] = Scanner(load_backend(checkpoint), post, post_options).method
    if baseline == "classical":
        methods["classical"] = classical_method
    if packaged:
        from docsynth.scan import packaged as packaged_mod

        methods[f"packaged:{post}"] = Scanner(load_backend(None), post, post_options).method
    report: dict[str, Any] = {"data": str(folder), "checkpoint": None if checkpoint is None else str(checkpoint),
                              "postprocessor": post if f"model:{post}" in methods else None,
                              "protocol": "SmartDoc 2015 Jaccard in the ground-truth document frame",
                              "methods": {}}
    if remark:
        report["note"] = remark
    if packaged:
        report["packaged"] = packaged_mod.facts()
    if progress:
        progress.start(len(items) * len(methods))
    skipped: dict[Path, str] = {}
    for name, method in methods.items():
        report["methods"][name] = evaluate_method(method, items, progress=progress.advance if progress else None,
                                                  skipped=skipped, warn=warn)
    report["skipped"] = [{"image": path.name, "path": str(path), "reason": reason} for path, reason in skipped.items()]
    if len(skipped) == len(items):
        raise DocsynthError(f"{Path(folder) / 'corners.csv'}: none of its {len(items)} photos could be read "
                            f"(first: {next(iter(skipped.values()))}); replace or remove them")
    if out is not None:
        report["files"] = write_report(out, report, folder, worst)
    return report


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------


def format_report(report: dict[str, Any]) -> str:
    """Plain-text summary and per-image table of ``{"methods": {name: results}, ...}``."""
    methods = list(report["methods"])
    lines = []
    for name in methods:
        r = report["methods"][name]
        subsets = ", ".join(f"{s} {v['mean_jaccard']:.4f} (n={v['count']})" for s, v in r["subsets"].items())
        lines.append(f"{name}: mean Jaccard {r['mean_jaccard']:.4f}, mean mask IoU {r['mean_mask_iou']:.4f}, "
                     f"found {r['found']}/{r['count']}; per subset: {subsets}")
        cal = r.get("calibration")
        if cal and cal["confident"]:
            lines.append(f"  confidence >= {CONFIDENT}: {cal['confident']} quads, {cal['wrong_among_confident']:.1%} "
                         f"of them wrong (Jaccard < {WRONG_BELOW}); {cal['right_with_low_confidence']:.1%} of the right "
                         "ones had lower confidence")
    subsets = sorted({s for m in methods for s in report["methods"][m]["subsets"]})
    if len(subsets) > 1:  # per subset (per hard case for `docsynth hardcases` folders), worst first
        worst = {s: min(report["methods"][m]["subsets"].get(s, {}).get("mean_jaccard", 1.0) for m in methods[:1])
                 for s in subsets}
        sw = max(6, max(map(len, subsets)))
        lines += ["", f"{'subset':<{sw}}  {'n':>3}  " + "  ".join(f"{m[:16]:>16}" for m in methods)]
        for s in sorted(subsets, key=worst.get):
            n = max(report["methods"][m]["subsets"].get(s, {}).get("count", 0) for m in methods)
            cells = [report["methods"][m]["subsets"].get(s) for m in methods]
            lines.append(f"{s:<{sw}}  {n:>3}  " + "  ".join(f"{c['mean_jaccard']:16.4f}" if c else f"{'-':>16}"
                                                           for c in cells))
    width = max(len(row["image"]) for row in report["methods"][methods[0]]["images"])
    head = f"{'image':<{width}}  " + "  ".join(f"{m[:14]:>14} J   IoU" for m in methods)
    lines += ["", head, "-" * len(head)]
    per = [{row["image"]: row for row in report["methods"][m]["images"]} for m in methods]
    for row in report["methods"][methods[0]]["images"]:
        cells = []
        for table in per:
            r = table[row["image"]]
            cells.append(f"{r['jaccard']:16.4f} {r['mask_iou']:.3f}")
        note = f"  ({row['reason']})" if row["reason"] else ""
        lines.append(f"{row['image']:<{width}}  " + "  ".join(cells) + note)
    skipped = report.get("skipped") or []
    if skipped:
        lines += ["", f"skipped {len(skipped)} unreadable photo{'s' if len(skipped) > 1 else ''}, not scored: "
                  + ", ".join(s["image"] for s in skipped)]
    return "\n".join(lines)


def per_image_csv(report: dict[str, Any]) -> str:
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", "image", "subset", "jaccard", "mask_iou", "confidence", "reason"])
    for name, r in report["methods"].items():
        for row in r["images"]:
            writer.writerow([name, row["image"], row["subset"], f"{row['jaccard']:.6f}",
                             f"{row['mask_iou']:.6f}", f"{row['confidence']:.4f}", row["reason"]])
    return buf.getvalue()


COLOURS = {"truth": (60, 200, 60), 0: (40, 40, 230), 1: (230, 120, 30)}  # BGR: green, red, blue


def contact_sheet(report: dict[str, Any], folder: str | Path, worst: int = 8, tile: int = 360,
                  columns: int = 4) -> np.ndarray:
    """The ``worst`` images of the first method, each with the true quad (green), the method's
    quad (red) and the second method's quad (blue), captioned with their scores."""
    from docsynth.scan.scanner import read_photo

    methods = list(report["methods"])
    rows = sorted(report["methods"][methods[0]]["images"], key=lambda r: r["jaccard"])[:worst]
    paths = {p.name: (p, gt) for p, gt in corners_csv.read_folder(folder)}
    tiles = []
    for row in rows:
        path, gt = paths[row["image"]]
        image = read_photo(path)
        h, w = image.shape[:2]
        f = tile / max(h, w)
        thumb = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        canvas = np.full((thumb.shape[0] + 44, tile, 3), 255, np.uint8)
        y0, x0 = 0, (tile - thumb.shape[1]) // 2  # top-aligned, so the caption sits under the photo
        canvas[y0:y0 + thumb.shape[0], x0:x0 + thumb.shape[1]] = thumb
        shift = np.array([x0, y0])

        def draw(corners, colour, thickness):
            pts = np.round(np.asarray(corners) * f + shift).astype(np.int32)
            cv2.polylines(canvas, [pts], True, colour, thickness, cv2.LINE_AA)

        draw(gt, COLOURS["truth"], 2)
        caption = []
        for k, name in enumerate(methods[:2]):
            r = next(x for x in report["methods"][name]["images"] if x["image"] == row["image"])
            if r["corners"] is not None:
                draw(r["corners"], COLOURS[k], 2 if k == 0 else 1)
            caption.append(f"{name[:12]} {r['jaccard']:.3f}")
        cv2.putText(canvas, row["image"][:46], (4, thumb.shape[0] + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, "  ".join(caption), (4, thumb.shape[0] + 36), cv2.FONT_HERSHEY_SIMPLEX, 0.42, COLOURS[0], 1,
                    cv2.LINE_AA)
        tiles.append(canvas)
    if not tiles:
        return np.full((tile, tile, 3), 255, np.uint8)
    # portrait and landscape photos share a row: each row is as tall as its tallest photo
    return grid(tiles, columns, gap=0, background=255, max_width=0)


def write_report(out: str | Path, report: dict[str, Any], folder: str | Path, worst: int = 8) -> dict[str, str]:
    """results.json, per_image.csv and worst.png in ``out``; returns their paths."""
    import json

    from docsynth.io import atomic_write_text, write_image

    out = Path(out)
    files = {"results": str(out / "results.json"), "per_image": str(out / "per_image.csv"),
             "worst": str(out / "worst.png")}
    atomic_write_text(files["results"], json.dumps(report, indent=2, default=_json_default) + "\n")
    atomic_write_text(files["per_image"], per_image_csv(report))
    write_image(files["worst"], contact_sheet(report, folder, worst))
    return files


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
