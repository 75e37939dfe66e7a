"""The SmartDoc protocol over a set of photos: each photo's quad scored (the per-quad scores are
in :mod:`docsynth.scoring`), subsets by file-name prefix, means overall and per subset (the mean
over images is the headline number), and calibration (is a confident answer a right one?)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from docsynth.scoring import image_mask_iou, jaccard_smartdoc


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
    return summarise_scores(rows)


def summarise_scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
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


def abstention(rows: list[dict[str, Any]], negatives: list[dict[str, Any]]) -> dict[str, Any]:
    """When does a method answer? ``false_refusal``: the share of photos with a page that got no
    quad (a refusal scores 0); ``false_acceptance``: the share of photos without a page that got
    a quad, and ``confident_false_acceptance`` the share that got one with confidence >= 0.5
    (what a user who trusts confident quads would see). ``negatives``: one dict per page-less
    photo with ``corners`` (None when nothing was found) and ``confidence``."""
    found = [n for n in negatives if n["corners"] is not None]
    # None, not NaN, where there is nothing to measure: results.json stays valid JSON
    return {"pages": len(rows),
            "false_refusal": (sum(r["corners"] is None for r in rows) / len(rows)) if rows else None,
            "negatives": len(negatives),
            "false_acceptance": (len(found) / len(negatives)) if negatives else None,
            "confident_false_acceptance": (sum(n["confidence"] >= CONFIDENT for n in found) / len(negatives))
            if negatives else None}
