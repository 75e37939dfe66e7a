"""Dense labels from a sample's page map: ``uv``, ``visible`` and the backward map ``bm``.

``generate.labels: [dewarp]`` writes ``dewarp/<id>.npz`` per sample (``np.savez_compressed``,
float32; float16 was measured at 0.5 px off on A4 pages):

- ``uv`` (H x W x 2): for each photo pixel, sampled at its centre (j + 0.5, i + 0.5), the
  position on the flat page it shows, as fractions of the page (x first; u = 0 is the page's
  left edge, u = 1 its right edge). NaN where the pixel does not show the page.
- ``visible`` (H x W, uint8 0/1): page pixels not hidden by an occluder (hand, clutter,
  cable...): the page mask restricted to pixels whose ``uv`` is defined.
- ``bm`` (G_h x G_w x 2, default 448 x 448): entry [j, i] is where the flat point
  ((i + 0.5) / G_w, (j + 0.5) / G_h) appears in the photo, as fractions of the photo's width
  and height (x first). Computed by moving the grid forward through the exact maps, not by
  inverting ``uv``; points outside the photo fall outside [0, 1].

``uv`` moves photo points backward through the same maps, so both are exact up to floating
point (and to 1e-5 px for lens/elastic remaps, inverted numerically). Negatives have an all-NaN
``uv`` and ``bm`` and an empty ``visible``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth.errors import DocsynthError
from docsynth.generate.words import decode_jsonl, encode_jsonl, word_records
from docsynth.kinds import Sample

LABEL_KINDS = ("dewarp", "text")
BM_SIZE = (448, 448)  # (G_h, G_w), as Doc3D's backward maps


def pixel_centres(width: int, height: int) -> np.ndarray:
    """(H*W, 2) centres of a frame's pixels in edge coordinates, row by row."""
    xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def grid_points(gw: int, gh: int) -> np.ndarray:
    """(gh*gw, 2) flat-page fractions ((i + 0.5) / gw, (j + 0.5) / gh), row by row."""
    return pixel_centres(gw, gh) / (gw, gh)


def require_geometry(sample: Sample, compositor: str) -> Any:
    """The sample's page map, or None for a negative; one clear line when a compositor made a
    page without reporting how."""
    if sample.geometry is None:
        if sample.corners is None:
            return None
        raise DocsynthError(f"generate.labels: compositor {compositor!r} does not report the page's geometry "
                            "(Sample.geometry), so dewarp/text labels cannot be made; use realistic, reference "
                            "or homography, or set generate.labels: []")
    sample.geometry.check()
    return sample.geometry


def uv_map(sample: Sample, geometry: Any) -> np.ndarray:
    """H x W x 2 float64 flat-page fractions per photo pixel (NaN off the page)."""
    h, w = sample.mask.shape[:2]
    if geometry is None:
        return np.full((h, w, 2), np.nan)
    flat = geometry.backward(pixel_centres(w, h))
    return (flat / geometry.size).reshape(h, w, 2)


def backward_map(sample: Sample, geometry: Any, size: tuple[int, int] = BM_SIZE) -> np.ndarray:
    """G_h x G_w x 2 float64 photo positions (fractions of width, height) of the flat grid."""
    gh, gw = size
    if geometry is None:
        return np.full((gh, gw, 2), np.nan)
    h, w = sample.mask.shape[:2]
    photo = geometry.forward(grid_points(gw, gh) * geometry.size)
    return (photo / (w, h)).reshape(gh, gw, 2)


def dewarp_arrays(sample: Sample, geometry: Any, size: tuple[int, int] = BM_SIZE) -> dict[str, np.ndarray]:
    """``uv``, ``visible`` and ``bm`` of one sample, as written to ``dewarp/<id>.npz``."""
    uv = uv_map(sample, geometry)
    visible = ((sample.mask > 0) & ~np.isnan(uv[..., 0])).astype(np.uint8)
    return {"uv": uv.astype(np.float32), "visible": visible, "bm": backward_map(sample, geometry, size).astype(np.float32)}


def encode_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """What ``np.savez_compressed`` writes (a zip of .npy files, deflated), at zlib level 1:
    measured 3x faster than its default level 6 on these maps, for files a few % larger."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, array in arrays.items():
            with zf.open(f"{name}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)
    return buf.getvalue()


def decode_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data)) as npz:
        return {k: npz[k] for k in npz.files}


def check_labels(labels: Any) -> list[str]:
    """``generate.labels`` as a list of known kinds, in a fixed order; one line when not."""
    if isinstance(labels, str):
        labels = [p.strip() for p in labels.split(",") if p.strip()]
    if not isinstance(labels, (list, tuple)):
        raise DocsynthError(f"generate.labels: {labels!r}; use a list of {', '.join(LABEL_KINDS)} (or [])")
    bad = [str(x) for x in labels if x not in LABEL_KINDS]
    if bad:
        raise DocsynthError(f"generate.labels: unknown label kind(s) {', '.join(bad)}; use some of "
                            f"{', '.join(LABEL_KINDS)}")
    return [k for k in LABEL_KINDS if k in labels]


# -- using the maps -----------------------------------------------------------------------------


def unwarp(image: np.ndarray, bm: np.ndarray, out_size: tuple[int, int] | None = None) -> np.ndarray:
    """Flatten a photo through its backward map: the flat page at ``out_size`` (w, h; default the
    grid's size). Each output pixel samples the photo at the bm position of its centre, the
    grid being upsampled bilinearly first (as DewarpNet and DocTr unwarp)."""
    gh, gw = bm.shape[:2]
    ow, oh = out_size or (gw, gh)
    h, w = image.shape[:2]
    # bm holds positions at grid-cell centres; resize with the same centre alignment
    full = cv2.resize(np.nan_to_num(bm.astype(np.float32), nan=-1.0), (ow, oh), interpolation=cv2.INTER_LINEAR)
    map_x = full[..., 0] * w - 0.5
    map_y = full[..., 1] * h - 0.5
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def lookup_uv(uv: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """``uv`` read at photo points (edge coordinates) by bilinear interpolation between pixel
    centres; NaN where a neighbour is off the page and for points outside the pixel centres'
    span (beyond the photo there is nothing to read)."""
    h, w = uv.shape[:2]
    x = np.asarray(pts, np.float64)[:, 0] - 0.5
    y = np.asarray(pts, np.float64)[:, 1] - 0.5
    with np.errstate(invalid="ignore"):
        outside = ~((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1))
    x0 = np.clip(np.nan_to_num(np.floor(x)).astype(np.int64), 0, w - 2)
    y0 = np.clip(np.nan_to_num(np.floor(y)).astype(np.int64), 0, h - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = uv[y0, x0] * (1 - fx) + uv[y0, x0 + 1] * fx
    bottom = uv[y0 + 1, x0] * (1 - fx) + uv[y0 + 1, x0 + 1] * fx
    out = top * (1 - fy) + bottom * fy
    out[outside] = np.nan
    return out


def label_files(sample: Sample, labels: list[str], compositor: str, info: dict[str, Any],
                notes: set[str]) -> dict[str, tuple[str, bytes]]:
    """The label files of one sample: kind -> (member suffix, bytes), e.g. ``"dewarp" ->
    ("dewarp.npz", ...)``. Lines worth telling the user once go into ``notes``."""
    geometry = require_geometry(sample, compositor)
    out: dict[str, tuple[str, bytes]] = {}
    visible = sample.mask  # words need the mask only: no dense maps unless asked for
    if "dewarp" in labels:
        arrays = dewarp_arrays(sample, geometry)
        out["dewarp"] = ("dewarp.npz", encode_npz(arrays))
        visible = arrays["visible"]
    if "text" in labels:
        made_up = {"card", "receipt"} & set(sample.extra.get("cases", ()))  # pages the compositor drew
        if geometry is not None and geometry.words is None and not made_up:
            source = (info.get("document") or {}).get("source", "?")
            notes.add(f"text labels: documents from {source!r} come without words; their samples' "
                      "text/<id>.jsonl files are empty")
        out["text"] = ("text.jsonl", encode_jsonl(word_records(geometry, visible)))
    return out


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two greyscale images of one size (Gaussian window, sigma
    1.5, as Wang et al. 2004); colour images are turned grey first."""
    def grey(x):
        x = cv2.cvtColor(x, cv2.COLOR_BGR2GRAY) if x.ndim == 3 else x
        return x.astype(np.float64)

    x, y = grey(a), grey(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z):
        return cv2.GaussianBlur(z, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def resized_labels(root: Path, row: dict[str, Any], size: tuple[int, int]) -> dict[str, bytes]:
    """A sample's label files (``row["dewarp"]``, ``row["text"]`` under ``root``) for its image
    resized to ``size`` (w, h), e.g. by ``split``: ``bm`` and ``flat_poly`` do not change (they
    are fractions), ``photo_poly`` scales exactly, ``uv`` is resampled linearly (a pixel next to
    the page's edge may become NaN) and ``visible`` by nearest neighbour."""
    out: dict[str, bytes] = {}
    w, h = int(row["width"]), int(row["height"])
    sx, sy = size[0] / w, size[1] / h
    if row.get("dewarp"):
        data = (root / row["dewarp"]).read_bytes()
        if (sx, sy) != (1, 1):
            a = decode_npz(data)
            a["uv"] = cv2.resize(a["uv"], size, interpolation=cv2.INTER_LINEAR)
            a["visible"] = cv2.resize(a["visible"], size, interpolation=cv2.INTER_NEAREST) & ~np.isnan(a["uv"][..., 0])
            data = encode_npz(a)
        out["dewarp"] = data
    if row.get("text"):
        records = decode_jsonl((root / row["text"]).read_bytes())
        for r in records:
            r["photo_poly"] = np.round(np.asarray(r["photo_poly"], np.float64) * (sx, sy), 3).tolist()
        out["text"] = encode_jsonl(records)
    return out
