"""``curves.png``: loss and IoU per epoch. matplotlib when installed, else drawn with OpenCV
(so training needs no plotting library)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth.io import atomic_write_bytes, encode_image

# (metric key, label, BGR colour for the OpenCV plot, matplotlib colour)
LOSSES = [("train_loss", "train loss", (200, 90, 30), "tab:blue"),
          ("valid_loss", "valid loss", (40, 130, 240), "tab:orange")]
IOUS = [("valid_iou", "valid IoU", (60, 160, 60), "tab:green"),
        ("real_iou", "real IoU", (40, 40, 210), "tab:red"),
        ("real_jaccard", "real Jaccard", (150, 40, 150), "tab:purple")]


def write_curves(path: str | Path, history: list[dict[str, Any]]) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        atomic_write_bytes(path, encode_image(draw_curves(history), ".png"))
        return
    _matplotlib(path, history)


def _series(history: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    pts = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def _matplotlib(path: str | Path, history: list[dict[str, Any]]) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, group, title in ((axes[0], LOSSES, "loss"), (axes[1], IOUS, "IoU")):
        for key, label, _, colour in group:
            xs, ys = _series(history, key)
            if xs:
                ax.plot(xs, ys, marker="o", label=label, color=colour)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def draw_curves(history: list[dict[str, Any]], panel: tuple[int, int] = (480, 320)) -> np.ndarray:
    """Two panels side by side (loss, IoU), white background, one polyline per metric."""
    pw, ph = panel
    canvas = np.full((ph, 2 * pw, 3), 255, np.uint8)
    for p, (group, title) in enumerate(((LOSSES, "loss"), (IOUS, "IoU"))):
        x0, left, top, right, bottom = p * pw, 50, 30, pw - 15, ph - 35
        values = [v for key, *_ in group for v in _series(history, key)[1]]
        epochs = [r["epoch"] for r in history] or [1]
        lo, hi = (0.0, 1.0) if title == "IoU" else (min(values, default=0.0), max(values, default=1.0))
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        e0, e1 = min(epochs), max(max(epochs), min(epochs) + 1)

        def at(epoch: float, value: float) -> tuple[int, int]:
            x = x0 + left + (epoch - e0) / (e1 - e0) * (right - left)
            y = bottom - (value - lo) / (hi - lo) * (bottom - top)
            return int(round(x)), int(round(y))

        cv2.rectangle(canvas, (x0 + left, top), (x0 + right, bottom), (0, 0, 0), 1)
        cv2.putText(canvas, title, (x0 + left, top - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        for value in (lo, hi):
            cv2.putText(canvas, f"{value:.3g}", (x0 + 2, at(e0, value)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                        (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, f"epoch {e0}..{e1}", (x0 + left, ph - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
        for k, (key, label, colour, _) in enumerate(group):
            xs, ys = _series(history, key)
            pts = [at(x, y) for x, y in zip(xs, ys)]
            if len(pts) > 1:
                cv2.polylines(canvas, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
            for pt in pts:
                cv2.circle(canvas, pt, 3, colour, -1, cv2.LINE_AA)
            if pts:
                cv2.putText(canvas, label, (x0 + right - 110, top + 18 + 16 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                            colour, 1, cv2.LINE_AA)
    return canvas
