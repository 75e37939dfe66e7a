"""Text labels: the page's words carried through the sample's page map.

Sources that know their text (procedural, pdf, funsd, docvqa) hand over words on the flat page
(``Page.words``: ``{"text", "poly"}``, poly clockwise from the top-left in document pixels,
optional ``line``). ``generate.labels: [text]`` writes ``text/<id>.jsonl``, one record per word:

- ``text``; ``line``: the word's line on the page (from the source, else grouped here);
- ``flat_poly``: the polygon on the flat page, as fractions of the page (like ``uv``);
- ``photo_poly``: the same points in the photo, in pixels (edge coordinates). Where the page is
  not projective (curl, fold, lens, grid, elastic) every edge carries ``EDGE_POINTS - 1`` extra
  points, so ``photo_poly`` follows the bend; ``flat_poly`` has the same points, one for one;
- ``visible_frac``: the share of points spread over the word that the photo shows;
- ``truncated``: some of the word falls outside the photo (or where the photo shows something
  other than the page, e.g. a reflected border); ``occluded``: some of it is hidden by an
  occluder (hand, cable, clutter).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

EDGE_POINTS = 4  # segments per word edge on non-projective pages
_GRID = (7, 3)  # points across and down a word for visibility


def densify(poly: np.ndarray, segments: int) -> np.ndarray:
    """A closed polygon with ``segments - 1`` extra points on every edge (first point kept first)."""
    if segments <= 1:
        return poly
    t = np.arange(segments)[:, None] / segments
    return np.concatenate([poly[k] + (poly[(k + 1) % len(poly)] - poly[k]) * t for k in range(len(poly))])


def _inside_points(quad: np.ndarray) -> np.ndarray:
    """Points spread over a quad (bilinear in its corners), for visibility."""
    nx, ny = _GRID
    s, t = np.meshgrid((np.arange(nx) + 0.5) / nx, (np.arange(ny) + 0.5) / ny)
    s, t = s.ravel()[:, None], t.ravel()[:, None]
    tl, tr, br, bl = quad[:4]
    return (1 - t) * ((1 - s) * tl + s * tr) + t * ((1 - s) * bl + s * br)


def group_lines(words: list[dict[str, Any]]) -> list[int]:
    """A line index per word: the source's ``line`` where given, else words whose vertical
    extents overlap the line's by more than half their height (flat page: lines are level)."""
    if all("line" in w for w in words):
        return [int(w["line"]) for w in words]
    boxes = [np.asarray(w["poly"], np.float64) for w in words]
    order = sorted(range(len(words)), key=lambda i: (boxes[i][:, 1].mean(), boxes[i][:, 0].min()))
    lines: list[list[int]] = []
    line_of = [0] * len(words)
    for i in order:
        y0, y1 = boxes[i][:, 1].min(), boxes[i][:, 1].max()
        for k, members in enumerate(lines):
            ly0 = float(np.mean([boxes[m][:, 1].min() for m in members]))
            ly1 = float(np.mean([boxes[m][:, 1].max() for m in members]))
            overlap = min(y1, ly1) - max(y0, ly0)
            if overlap > 0.5 * min(y1 - y0, ly1 - ly0):
                members.append(i)
                line_of[i] = k
                break
        else:
            line_of[i] = len(lines)
            lines.append([i])
    return line_of


def word_records(geometry: Any, visible: np.ndarray) -> list[dict[str, Any]]:
    """One record per word of the page in ``geometry`` (a PageMap); ``visible`` is the sample's
    H x W page mask (or the dewarp ``visible`` array): non-zero where the page is not hidden."""
    words = getattr(geometry, "words", None) if geometry is not None else None
    if not words:
        return []
    h, w = visible.shape[:2]
    size = np.asarray(geometry.size, np.float64)
    segments = 1 if geometry.projective else EDGE_POINTS
    lines = group_lines(words)
    quads = [np.asarray(word["poly"], np.float64).reshape(-1, 2)[:4] for word in words]
    # every word's outline and probe points through the maps at once (one call per stage)
    flats = np.stack([densify(q, segments) for q in quads])  # words x points x 2
    probes = np.stack([np.concatenate([_inside_points(q), q]) for q in quads])
    photos = geometry.forward(flats.reshape(-1, 2)).reshape(flats.shape)
    probe_photo = geometry.forward(probes.reshape(-1, 2))
    inside = ((probe_photo[:, 0] >= 0) & (probe_photo[:, 0] < w) & (probe_photo[:, 1] >= 0)
              & (probe_photo[:, 1] < h))
    xi = np.clip(np.nan_to_num(probe_photo[:, 0]), 0, w - 1).astype(np.int64)
    yi = np.clip(np.nan_to_num(probe_photo[:, 1]), 0, h - 1).astype(np.int64)
    # a point in the frame whose pixel does not show the page at all was never there
    # (reflected border, content a step made up): that counts as truncation
    on_page_all = (inside & ~np.isnan(geometry.backward(probe_photo)[:, 0])).reshape(probes.shape[:2])
    shown_all = (inside & (visible[yi, xi] > 0)).reshape(probes.shape[:2]) & on_page_all
    records = []
    for word, line, flat, photo, shown, on_page in zip(words, lines, flats, photos, shown_all, on_page_all, strict=False):
        records.append({
            "text": str(word["text"]),
            "line": int(line),
            "flat_poly": np.round(flat / size, 6).tolist(),
            "photo_poly": np.round(photo, 3).tolist(),
            "visible_frac": round(float(shown.mean()), 4),
            "truncated": bool((~on_page).any()),
            "occluded": bool((on_page & ~shown).any()),
        })
    return records


def encode_jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records).encode("utf-8")


def decode_jsonl(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
