"""Pictures shared by the commands: tiles and contact-sheet grids, quads drawn on photos, line charts.

The report, preview, evaluate, stats and training draw with these; images are BGR uint8 (OpenCV).
Line charts come in two renderings of one layout (axes, ticks, colour order, legend): inline SVG
for the HTML report (no script, no fonts to fetch) and a raster panel grid for PNG files
(``curves.png``, ``stats --plot``), so no plotting library is needed.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


TILE = 220  # height of a contact-sheet tile, pixels


COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def grid(tiles: list[np.ndarray], columns: int = 4, gap: int = 6, background: int = 255, edge: bool = True,
         max_width: int | None = None) -> np.ndarray:
    """The one contact-sheet layout: tiles side by side, ``columns`` to a row (a row also ends
    before it grows wider than ``max_width``; None: about two report tiles per column, 0: no
    limit), each row as tall as its tallest tile, ``gap`` pixels after every tile and row (and
    before the first with ``edge``), the rest filled with ``background``."""
    rows: list[list[np.ndarray]] = []
    row: list[np.ndarray] = []
    width = 0
    if max_width is None:
        max_width = max(1, columns) * (TILE * 3 // 4 + gap) * 2
    for tile in tiles:
        if row and (len(row) >= columns or (max_width and width + tile.shape[1] > max_width)):
            rows.append(row)
            row, width = [], 0
        row.append(tile)
        width += tile.shape[1] + gap
    if row:
        rows.append(row)
    margin = gap if edge else 0
    sheet_w = max(sum(t.shape[1] for t in r) + gap * len(r) for r in rows) + margin
    sheet_h = sum(max(t.shape[0] for t in r) + gap for r in rows) + margin
    sheet = np.full((sheet_h, sheet_w, 3), background, np.uint8)
    y = margin
    for r in rows:
        x = margin
        for t in r:
            sheet[y:y + t.shape[0], x:x + t.shape[1]] = t
            x += t.shape[1] + gap
        y += max(t.shape[0] for t in r) + gap
    return sheet


def fit_height(image: np.ndarray, height: int = TILE) -> tuple[np.ndarray, float]:
    scale = height / image.shape[0]
    width = max(1, round(image.shape[1] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp), scale


def draw_quad(image: np.ndarray, corners: Any, colour: tuple[int, int, int], scale: float = 1.0,
              numbers: bool = True, thickness: int = 2) -> None:
    """Outline a TL,TR,BR,BL quad (edge coordinates) and number its corners 0-3 in place, as
    everywhere in docsynth (0 = top-left, clockwise)."""
    pts = np.asarray(corners, dtype=np.float64).reshape(4, 2) * scale
    shift = 4
    fixed = np.round(pts * (1 << shift)).astype(np.int32)
    cv2.polylines(image, [fixed], True, colour, thickness, cv2.LINE_AA, shift)
    if not numbers:
        return
    for k, (x, y) in enumerate(pts):
        centre = (int(round(x)), int(round(y)))
        cv2.circle(image, centre, 8, colour, -1, cv2.LINE_AA)
        cv2.putText(image, str(k), (centre[0] - 4, centre[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (255, 255, 255), 1, cv2.LINE_AA)


def svg_chart(title: str, series: dict[str, list[tuple[float, float]]], xlabel: str = "epoch",
              width: int = 460, height: int = 260, whole_x: bool | None = None) -> str:
    """A line chart as inline SVG (no script, no fonts to fetch)."""
    series = _finite_points(series)
    if not series:
        return ""
    left, right, top, bottom = 52, 12, 28, 40
    x0, x1, y0, y1 = _axes(series)
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{_esc(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for t in _ticks(y0, y1):
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{py(t) + 4:.1f}" font-size="10" text-anchor="end">{t:.3g}</text>')
    whole_x = xlabel == "epoch" if whole_x is None else whole_x  # no epoch 1.5 on the axis
    for t in _ticks(x0, x1, whole=whole_x):
        parts.append(f'<text x="{px(t):.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">{t:.3g}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 6}" font-size="11" text-anchor="middle">{_esc(xlabel)}</text>')
    for k, (name, points) in enumerate(sorted(series.items())):
        colour = COLOURS[k % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for x, y in points if len(points) <= 60 else []:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"/>')
        ly = top + 14 + 14 * k
        parts.append(f'<line x1="{left + pw - 150}" x2="{left + pw - 134}" y1="{ly - 4}" y2="{ly - 4}" '
                     f'stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{left + pw - 130}" y="{ly}" font-size="10">{_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _finite_points(series: dict[str, list[tuple[float, float]]]) -> dict[str, list[tuple[float, float]]]:
    """The series without non-finite points, and without series left empty."""
    series = {k: [(float(x), float(y)) for x, y in v if finite(x) and finite(y)] for k, v in series.items()}
    return {k: v for k, v in series.items() if v}


def _axes(series: dict[str, list[tuple[float, float]]],
          y_range: tuple[float, float] | None = None) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) of a chart: the points' extent (a fixed ``y_range`` as given), never
    empty, with 5% room above and below a fitted y range."""
    xs = [x for v in series.values() for x, _ in v]
    ys = [y for v in series.values() for _, y in v]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range or (min(ys), max(ys))
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 == y0:
        y0, y1 = y0 - (abs(y0) * 0.1 or 0.5), y1 + (abs(y1) * 0.1 or 0.5)
    if y_range is None:
        pad = (y1 - y0) * 0.05
        y0, y1 = y0 - pad, y1 + pad
    return x0, x1, y0, y1


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _ticks(lo: float, hi: float, n: int = 5, whole: bool = False) -> list[float]:
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / n)) if span > 0 else 1
    for m in (1, 2, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    if whole:
        step = max(1, round(step))
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def caption(tile: np.ndarray, text: str) -> np.ndarray:
    """The tile with one line of text under it (shortened with '..' to fit its width)."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    width = tile.shape[1] - 4
    if cv2.getTextSize(text, font, scale, 1)[0][0] > width:
        while len(text) > 1 and cv2.getTextSize(text + "..", font, scale, 1)[0][0] > width:
            text = text[:-1]
        text += ".."
    bar = np.full((18, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (2, 13), font, scale, (40, 40, 40), 1, cv2.LINE_AA)
    return np.vstack([tile, bar])


def bgr(colour: str) -> tuple[int, int, int]:
    """A ``#rrggbb`` colour of ``COLOURS`` as an OpenCV BGR triple."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return b, g, r


@dataclass
class Panel:
    """One raster chart panel: a title, named series of (x, y) points (drawn in ``COLOURS``
    order, so a name keeps its colour when panels list their series in the same order), the x
    axis label, and a fixed y range (None: fitted to the points)."""

    title: str
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    xlabel: str = "epoch"
    y_range: tuple[float, float] | None = None


def raster_chart(panels: list[Panel], columns: int = 2, size: tuple[int, int] = (480, 320)) -> np.ndarray:
    """Line-chart panels drawn with OpenCV, ``columns`` to a row in the contact-sheet ``grid``."""
    return grid([_draw_panel(p, *size) for p in panels], columns=columns, gap=8, max_width=0)


def _draw_panel(panel: Panel, width: int, height: int) -> np.ndarray:
    font, black = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 52, width - 12, 30, height - 40
    series = _finite_points(panel.series)
    # the legend runs leftwards from the right end of the title row; on a row of its own when
    # the title leaves no room
    legend_y = 18
    title_end = left + cv2.getTextSize(panel.title, font, 0.5, 1)[0][0]
    if right - sum(cv2.getTextSize(name, font, 0.4, 1)[0][0] + 32 for name in series) < title_end + 8:
        legend_y, top = 36, 46
    cv2.putText(image, panel.title, (left, 18), font, 0.5, black, 1, cv2.LINE_AA)
    cv2.rectangle(image, (left, top), (right, bottom), (153, 153, 153), 1)
    if not series:
        return image
    x0, x1, y0, y1 = _axes(series, panel.y_range)

    def at(x: float, y: float) -> tuple[int, int]:
        return (int(round(left + (x - x0) / (x1 - x0) * (right - left))),
                int(round(bottom - (y - y0) / (y1 - y0) * (bottom - top))))

    for t in _ticks(y0, y1):
        y = at(x0, t)[1]
        cv2.line(image, (left + 1, y), (right - 1, y), (238, 238, 238), 1)
        cv2.putText(image, f"{t:.3g}", (4, y + 4), font, 0.35, black, 1, cv2.LINE_AA)
    for t in _ticks(x0, x1, whole=panel.xlabel == "epoch"):
        x = at(t, y0)[0]
        cv2.putText(image, f"{t:.3g}", (x - 8, bottom + 14), font, 0.35, black, 1, cv2.LINE_AA)
    cv2.putText(image, panel.xlabel, ((left + right) // 2 - 20, height - 8), font, 0.4, black, 1, cv2.LINE_AA)
    legend_x = right
    for k, (name, points) in reversed(list(enumerate(series.items()))):
        colour = bgr(COLOURS[k % len(COLOURS)])
        pts = [at(x, y) for x, y in points]
        if len(pts) > 1:
            cv2.polylines(image, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
        for pt in pts if len(pts) <= 60 else []:
            cv2.circle(image, pt, 3, colour, -1, cv2.LINE_AA)
        legend_x -= cv2.getTextSize(name, font, 0.4, 1)[0][0]
        cv2.putText(image, name, (legend_x, legend_y), font, 0.4, colour, 1, cv2.LINE_AA)
        legend_x -= 22
        cv2.line(image, (legend_x, legend_y - 4), (legend_x + 16, legend_y - 4), colour, 2, cv2.LINE_AA)
        legend_x -= 10
    return image
