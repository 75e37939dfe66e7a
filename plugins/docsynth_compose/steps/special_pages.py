"""Documents that are not sheets of paper: plastic cards and thermal receipts.

Both are rendered here as a :class:`~docsynth.kinds.Page` whose ``mask`` is the real outline
and whose corners are those of the page image (``corners=None``: the image's own corners).
That is the labelling rule of real annotated photos:

- **card** (ISO/IEC 7810 ID-1: 85.60 x 53.98 mm, corner radius 3.18 mm): the mask has the
  rounded corners, the corners are where the straight edges meet (just outside the plastic).
  Fronts have a photo, text lines and a coloured or dark print; backs a magnetic stripe, a
  signature strip and a barcode.
- **receipt**: long and narrow thermal paper (width : length 1 : 2 to 1 : 4.5), monospaced
  lines, dashed rules, sometimes faded; the top and/or bottom edge is torn (a jagged outline
  that wanders a few pixels to both sides of the straight edge). Corners are on the body of
  the receipt, where its straight sides meet the torn edge's mean line.

The compositor pastes them like any page, so camera pose, curl, hands and light apply as usual.
"""

from __future__ import annotations

import cv2
import numpy as np

from docsynth.kinds import Page

ID1_ASPECT = 85.60 / 53.98
ID1_RADIUS = 3.18 / 53.98  # share of the short side

_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL)
_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-:/"


def _text(rng: np.random.Generator, n: int) -> str:
    return "".join(_CHARS[int(i)] for i in rng.integers(len(_CHARS), size=n))


def rounded_rect_mask(w: int, h: int, radius: float) -> np.ndarray:
    """0/255 mask of a w x h rectangle with corners rounded by ``radius`` px (anti-aliased edge
    thresholded at half coverage, drawn at 4x)."""
    ss = 4
    big = np.zeros((h * ss, w * ss), np.uint8)
    r = max(1, int(round(radius * ss)))
    cv2.rectangle(big, (r, 0), (w * ss - 1 - r, h * ss - 1), 255, -1)
    cv2.rectangle(big, (0, r), (w * ss - 1, h * ss - 1 - r), 255, -1)
    for cx, cy in ((r, r), (w * ss - 1 - r, r), (w * ss - 1 - r, h * ss - 1 - r), (r, h * ss - 1 - r)):
        cv2.circle(big, (cx, cy), r, 255, -1)
    small = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    return np.where(small >= 128, 255, 0).astype(np.uint8)


def make_card(rng: np.random.Generator, width: int = 428) -> Page:
    """A plastic ID-1 card, landscape, front or back, ``width`` px wide."""
    w = int(width)
    h = int(round(w / ID1_ASPECT))
    c1, c2 = rng.uniform(40, 250, 3), rng.uniform(40, 250, 3)
    if rng.random() < 0.3:  # dark cards (bank cards)
        c1, c2 = rng.uniform(10, 70, 3), rng.uniform(20, 90, 3)
    elif rng.random() < 0.5:  # pale security print (ID cards)
        c1, c2 = rng.uniform(200, 250, 3), rng.uniform(170, 240, 3)
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    img = (c1 * (1 - t) + c2 * t) * np.ones((h, 1, 1), np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    f = rng.uniform(0.02, 0.08)
    img += (np.sin(xs * f + np.sin(ys * f * 1.7) * 3) * rng.uniform(0, 12))[..., None]  # guilloche-like waves
    img = np.clip(img, 0, 255).astype(np.uint8)
    ink = (20, 20, 20) if img.mean() > 110 else (235, 235, 235)
    if rng.random() < 0.5:  # front: photo, name lines, number
        px, py, pw = int(w * 0.06), int(h * 0.28), int(w * 0.24)
        ph = int(pw * 1.28)
        cv2.rectangle(img, (px, py), (px + pw, min(h - 4, py + ph)), tuple(float(v) for v in rng.uniform(150, 220, 3)), -1)
        skin = tuple(float(v) for v in rng.uniform([60, 90, 120], [180, 200, 235]))
        cv2.ellipse(img, (px + pw // 2, py + int(ph * 0.42)), (int(pw * 0.3), int(ph * 0.3)), 0, 0, 360, skin, -1)
        cv2.ellipse(img, (px + pw // 2, py + ph), (int(pw * 0.45), int(ph * 0.35)), 0, 180, 360,
                    tuple(float(v) for v in rng.uniform(20, 120, 3)), -1)
        x = px + pw + int(w * 0.05)
        for i in range(int(rng.integers(3, 7))):
            y = int(h * 0.3 + i * h * 0.1)
            if y > h - 10:
                break
            cv2.putText(img, _text(rng, int(rng.integers(5, 16))), (x, y), _FONTS[int(rng.integers(len(_FONTS)))],
                        h / 420 * rng.uniform(0.8, 1.3), ink, 1, cv2.LINE_AA)
        cv2.putText(img, _text(rng, 10).replace(" ", ""), (int(w * 0.06), int(h * 0.18)), cv2.FONT_HERSHEY_DUPLEX,
                    h / 300, ink, 2, cv2.LINE_AA)
        if rng.random() < 0.5:  # machine-readable zone
            for i in range(2):
                cv2.putText(img, _text(rng, 30).replace(" ", "<"), (int(w * 0.04), int(h * (0.86 + i * 0.09))),
                            cv2.FONT_HERSHEY_PLAIN, h / 260, ink, 1, cv2.LINE_AA)
    else:  # back: magnetic stripe, signature strip, barcode
        top = int(h * rng.uniform(0.08, 0.14))
        cv2.rectangle(img, (0, top), (w, top + int(h * 0.18)), (25, 25, 25), -1)
        sy = top + int(h * 0.28)
        cv2.rectangle(img, (int(w * 0.06), sy), (int(w * 0.7), sy + int(h * 0.14)), (235, 240, 240), -1)
        x = int(w * 0.08)
        while x < w * 0.6:
            bw = int(rng.integers(1, 4))
            cv2.rectangle(img, (x, int(h * 0.72)), (x + bw, int(h * 0.9)), (15, 15, 15), -1)
            x += bw + int(rng.integers(1, 4))
    if rng.random() < 0.4:  # hologram patch
        cx, cy, r = int(w * rng.uniform(0.7, 0.9)), int(h * rng.uniform(0.6, 0.85)), int(h * 0.1)
        for k in range(3):
            cv2.circle(img, (cx, cy), r - k * 3, tuple(float(v) for v in rng.uniform(120, 255, 3)), 2, cv2.LINE_AA)
    mask = rounded_rect_mask(w, h, ID1_RADIUS * h)
    return Page(image=img, mask=mask, corners=None)


def _torn_edge(rng: np.random.Generator, w: int, depth: float) -> np.ndarray:
    """Offsets (px, + = into the paper) of a torn edge at each column: a jagged random walk
    around zero, so the straight edge is the tear's mean line."""
    steps = rng.normal(0, depth * 0.35, w)
    walk = np.cumsum(steps)
    walk -= np.linspace(walk[0], walk[-1], w)  # no drift: starts and ends on the line
    teeth = np.abs(rng.normal(0, depth * 0.5, w)) * (rng.random(w) < 0.3)
    return np.clip(walk + teeth, -depth, depth)


def make_receipt(rng: np.random.Generator, width: int = 220) -> Page:
    """A thermal receipt, portrait, ``width`` px wide; torn at the top and/or bottom."""
    w = int(width)
    h = int(w * rng.uniform(2.0, 4.5))
    depth = w * rng.uniform(0.01, 0.04)
    pad = int(np.ceil(depth)) + 1  # room for the tear's teeth beyond the straight edges
    paper = rng.uniform(232, 252) * rng.uniform([0.97, 0.98, 0.99], [1.0, 1.0, 1.0])
    img = np.empty((h + 2 * pad, w, 3), np.uint8)
    img[:] = paper.astype(np.uint8)
    fade = rng.uniform(0.25, 1.0)  # thermal print fades
    ink = tuple(float(v) for v in paper * (1 - fade * 0.8))
    font = cv2.FONT_HERSHEY_PLAIN if rng.random() < 0.6 else cv2.FONT_HERSHEY_SIMPLEX
    scale = w / 260 * rng.uniform(0.8, 1.1)
    step = int(max(8, 16 * scale * 1.4))
    y = pad + int(step * rng.uniform(1.5, 3))
    margin = int(w * 0.07)
    while y < h + pad - step:
        r = rng.random()
        if r < 0.12:
            x = margin
            while x < w - margin:
                cv2.line(img, (x, y - step // 3), (min(w - margin, x + 5), y - step // 3), ink, 1)
                x += 9
        elif r < 0.2:
            y += step // 2
        else:
            left = _text(rng, int(rng.integers(4, 14)))
            cv2.putText(img, left, (margin, y), font, scale, ink, 1, cv2.LINE_AA)
            if rng.random() < 0.6:
                price = f"{rng.uniform(0.5, 99):.2f}"
                (tw, _), _ = cv2.getTextSize(price, font, scale, 1)
                cv2.putText(img, price, (w - margin - tw, y), font, scale, ink, 1, cv2.LINE_AA)
        y += step
    mask = np.zeros(img.shape[:2], np.uint8)
    mask[pad:pad + h] = 255
    cols = np.arange(w)
    for edge, sign in ((pad, 1), (pad + h, -1)):
        if rng.random() < 0.7:  # this edge is torn
            off = _torn_edge(rng, w, depth)
            line = np.round(edge + sign * off).astype(int)
            for x in cols:
                if sign > 0:
                    mask[:max(0, line[x]), x] = 0
                    mask[max(0, line[x]):pad, x] = 255
                else:
                    mask[min(mask.shape[0], line[x]):, x] = 0
                    mask[pad + h:min(mask.shape[0], line[x]), x] = 255
    corners = np.array([[0, pad], [w, pad], [w, pad + h], [0, pad + h]], np.float64)
    return Page(image=img, mask=mask, corners=corners)
