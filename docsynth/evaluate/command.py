"""What `docsynth evaluate` does: run each method (the model with its post-processor, the
packaged model, the classical baseline) over a folder of photos with corners.csv, score them
with :mod:`docsynth.evaluate.smartdoc`, and write the report (results.json, per_image.csv,
worst.png).
"""

from __future__ import annotations

import csv
import io as _io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth.errors import DocsynthError
from docsynth.evaluate.smartdoc import CONFIDENT, WRONG_BELOW, abstention, evaluate_predictions
from docsynth.formats import corners as corners_csv
from docsynth.io import atomic_write_text, write_image
from docsynth.progress import Progress
from docsynth.scan import packaged as packaged_mod
from docsynth.scan import scanner  # scanner.PACKAGED_MODEL read at call time: it can be moved
from docsynth.scan.classical import find_page
from docsynth.scan.scanner import Scanner, load_backend, packaged_model_available, read_photo
from docsynth.viz import grid

# ---------------------------------------------------------------------------------------------
# Polygons
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Ground truth files and running a method over a folder
# ---------------------------------------------------------------------------------------------


# A method: BGR photo -> (Quad, predicted page mask or None)
Method = Callable[[np.ndarray], tuple[Any, "np.ndarray | None"]]


def evaluate_method(method: Method, items: list[tuple[Path, np.ndarray]],
                    progress: Progress | None = None,
                    skipped: dict[Path, str] | None = None,
                    warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Score ``method`` on ``items``. With a ``skipped`` dict, an unreadable photo is recorded
    there (path -> one-line reason, ``warn`` told once) and left out instead of stopping the
    evaluation; photos already in it are left out without being read again, so every method
    is scored on the same photos. Without it, an unreadable photo raises DocsynthError."""
    records = []
    for path, gt in items:
        if skipped is not None and path in skipped:
            if progress:
                progress.advance()
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
                progress.advance()
            continue
        quad, mask = method(image)
        records.append({"image": path.name, "gt": gt, "pred": quad.corners,
                        "size": (image.shape[1], image.shape[0]), "mask": mask,
                        "confidence": quad.confidence, "reason": quad.reason})
        if progress:
            progress.advance()
    return evaluate_predictions(records)


def run_negatives(method: Method, negatives: list[Path], skipped: dict[Path, str],
                  progress: Progress | None = None) -> list[dict[str, Any]]:
    """``method`` on photos without a page: what it found there (nothing, ideally)."""
    found = []
    for path in negatives:
        if path not in skipped:
            try:
                quad, _ = method(read_photo(path))
                found.append({"image": path.name, "corners": None if quad.corners is None else
                              np.round(np.asarray(quad.corners, np.float64), 2).tolist(),
                              "confidence": float(quad.confidence), "reason": quad.reason})
            except DocsynthError as exc:
                skipped[path] = str(exc).strip().splitlines()[0]
        if progress:
            progress.advance()
    return found


def classical_method(image: np.ndarray) -> tuple[Any, None]:
    return find_page(image), None


def run_evaluation(folder: str | Path, checkpoint: str | Path | None, *, post: str = "refine",
                   post_options: dict[str, Any] | None = None, baseline: str | None = None,
                   out: str | Path | None = None, worst: int = 8, force: bool = False,
                   progress: Progress | None = None, note: Callable[[str], None] | None = None,
                   remark: str = "", warn: Callable[[str], None] | None = None,
                   packaged: bool = False) -> dict[str, Any]:
    """What `docsynth evaluate` does (and the `evaluate` stage of `docsynth run` can call).

    Scores the model (``checkpoint``; None = the packaged model) and the optional baseline on
    ``folder``, writes the report to ``out`` (when given) and returns it. Without a checkpoint
    and without a packaged model, a baseline is scored alone (``note`` says so); with no
    baseline either, the missing model is an error. ``progress`` counts the photos scored, per
    method. ``remark`` is stored in the report
    (e.g. that the photos are synthetic). A photo that cannot be read is skipped: ``warn`` gets
    one line naming it, and the report lists it under ``skipped``; when no photo can be read,
    DocsynthError. ``packaged`` also scores the packaged model (method ``packaged:<post>``,
    after the baseline) when ``checkpoint`` is another model; the report's ``packaged`` entry
    describes it."""
    if out is not None and (Path(out) / "results.json").exists() and not force:
        raise DocsynthError(f"{Path(out) / 'results.json'}: exists from an earlier evaluation; pass --force "
                            "to replace it or choose another --out")
    if baseline not in (None, "classical"):
        raise DocsynthError(f"--baseline {baseline!r}: the only baseline is 'classical'")
    packaged = bool(packaged and checkpoint is not None)  # without a checkpoint the model is the packaged one
    if packaged and not packaged_model_available():
        raise DocsynthError(f"evaluate.packaged: no packaged model is installed ({scanner.PACKAGED_MODEL.with_suffix('.onnx')} "
                            f"and {scanner.PACKAGED_MODEL} are missing); set evaluate.packaged: false")
    items = corners_csv.read_folder(folder)
    negatives = corners_csv.read_negatives(folder)
    methods: dict[str, Method] = {}
    if checkpoint is None and not scanner.PACKAGED_MODEL.is_file() and baseline:
        if note:
            note(f"no packaged model is installed ({scanner.PACKAGED_MODEL}); scoring the {baseline} baseline only; "
                 "pass CHECKPOINT to score a model")
    else:
        methods[f"model:{post}"] = Scanner(load_backend(checkpoint), post, post_options).method
    if baseline == "classical":
        methods["classical"] = classical_method
    if packaged:
        methods[f"packaged:{post}"] = Scanner(load_backend(None), post, post_options).method
    report: dict[str, Any] = {"data": str(folder), "checkpoint": None if checkpoint is None else str(checkpoint),
                              "postprocessor": post if f"model:{post}" in methods else None,
                              "protocol": "SmartDoc 2015 Jaccard in the ground-truth document frame",
                              "photos_digest": corners_csv.digest(folder), "methods": {}}
    if remark:
        report["note"] = remark
    if packaged:
        report["packaged"] = packaged_mod.facts()
    if progress:
        progress.start((len(items) + len(negatives)) * len(methods))
    skipped: dict[Path, str] = {}
    for name, method in methods.items():
        result = evaluate_method(method, items, progress=progress,
                                 skipped=skipped, warn=warn)
        found = run_negatives(method, negatives, skipped, progress)
        result["abstention"] = abstention(result["images"], found)
        if found:
            result["negatives"] = found
        report["methods"][name] = result
    report["skipped"] = [{"image": path.name, "path": str(path), "reason": reason} for path, reason in skipped.items()]
    if len(skipped) == len(items):
        raise DocsynthError(f"{Path(folder) / 'corners.csv'}: none of its {len(items)} photos could be read "
                            f"(first: {next(iter(skipped.values()))}); replace or remove them")
    if out is not None:
        report["files"] = write_evaluation(out, report, folder, worst)
    return report


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------


def format_report(report: dict[str, Any]) -> str:
    """Plain-text summary and per-image table of ``{"methods": {name: results}, ...}``."""
    methods = list(report["methods"])
    lines = [f"photos: {report['data']} (digest {report['photos_digest']}: scores compare on the same digest)"]
    for name in methods:
        r = report["methods"][name]
        per_subset = ", ".join(f"{s} {v['mean_jaccard']:.4f} (n={v['count']})" for s, v in r["subsets"].items())
        lines.append(f"{name}: mean Jaccard {r['mean_jaccard']:.4f}, mean mask IoU {r['mean_mask_iou']:.4f}, "
                     f"found {r['found']}/{r['count']}; per subset: {per_subset}")
        ab = r.get("abstention")
        if ab:
            lines.append(f"  false refusals {ab['false_refusal']:.1%} of {ab['pages']} photos with a page"
                         + (f"; false acceptances {ab['false_acceptance']:.1%} of {ab['negatives']} photos without "
                            f"one ({ab['confident_false_acceptance']:.1%} with confidence >= {CONFIDENT})"
                            if ab["negatives"] else "; no photos without a page to measure false acceptance"))
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
        for s in sorted(subsets, key=lambda s: worst[s]):
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

        def draw(corners, colour, thickness, f=f, shift=shift, canvas=canvas):  # this photo's
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


def write_evaluation(out: str | Path, report: dict[str, Any], folder: str | Path, worst: int = 8) -> dict[str, str]:
    """results.json, per_image.csv and worst.png in ``out``; returns their paths."""
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
