"""Turn whatever a download or a folder holds into an upright RGB JPEG, or say why not.

Pillow decodes the odd formats OpenCV stumbles on (GIF, palette PNGs, CMYK and greyscale
JPEGs, 16-bit PNGs, WebP) and applies the EXIF orientation. Each rejection has a short reason
(``html``, ``undecodable``, ``truncated``, ``too-small``...) so a scrape can count them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

TEXT_STARTS = (b"<", b"{", b"[")  # HTML, XML, SVG, JSON: no image format starts like this


class Rejected(Exception):
    """An input that cannot become a background; ``reason`` is a short, countable word."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class Normalized:
    jpeg: bytes
    width: int
    height: int
    sha256: str
    phash: str  # 16 hex digits, imagehash's 64-bit DCT hash
    changed: bool  # False when the input already was an upright RGB JPEG kept byte for byte


def text_kind(data: bytes) -> str | None:
    """'html' for HTML error pages, 'text' for JSON/XML/SVG, None for anything else."""
    head = data[:1024].lstrip().lower()
    if not head.startswith(TEXT_STARTS):
        return None
    return "html" if b"<html" in head or b"<!doctype html" in head or b"<head" in head else "text"


def phash_of(image) -> str:
    """Perceptual hash of a PIL image as 16 hex digits."""
    return str(imagehash.phash(image))


def _to_rgb(image):
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greyscale: stretch to 8 bit instead of clipping to white.
        a = np.asarray(image, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        image = Image.fromarray(a.astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent parts become mid grey: neither white (a page) nor black (a shadow).
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return image.convert("RGB")  # CMYK (incl. Adobe's inverted kind), L, P, YCbCr...


def normalize_bytes(data: bytes, *, min_width: int = 1, min_height: int = 1, max_side: int = 0,
                    quality: int = 92) -> Normalized:
    """Decode ``data`` (first frame of animations), rotate upright, convert to RGB and encode
    a JPEG; downscale so the longer side is at most ``max_side`` (0: keep). Raises Rejected."""
    if not data:
        raise Rejected("empty")
    kind = text_kind(data)
    if kind:
        raise Rejected(kind, "a text page instead of an image")
    try:
        image = Image.open(io.BytesIO(data))
        fmt = image.format
        image.seek(0)
        image.load()  # raises on truncated data (Pillow's LOAD_TRUNCATED_IMAGES stays False)
    except Image.DecompressionBombError as exc:
        raise Rejected("too-large", str(exc)) from None
    except UnidentifiedImageError:
        raise Rejected("undecodable", "not an image format Pillow knows") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = "truncated" if "truncated" in str(exc).lower() or isinstance(exc, EOFError) else "undecodable"
        raise Rejected(reason, str(exc)) from None

    orientation = image.getexif().get(0x0112, 1)
    width, height = image.size
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    if width < min_width or height < min_height:
        raise Rejected("too-small", f"{width}x{height} < {min_width}x{min_height}")

    keep_bytes = (fmt == "JPEG" and image.mode == "RGB" and orientation == 1
                  and (not max_side or max(width, height) <= max_side))
    if keep_bytes:
        out = data
    else:
        upright: Image.Image = image
        with contextlib.suppress(Exception):  # a broken EXIF block must not lose an otherwise good image
            upright = ImageOps.exif_transpose(image)
        rgb = _to_rgb(upright)
        if max_side and max(rgb.size) > max_side:
            scale = max_side / max(rgb.size)
            size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
            rgb = rgb.resize(size, Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", quality=quality)
        out = buf.getvalue()
        width, height = rgb.size
    return Normalized(out, width, height, hashlib.sha256(out).hexdigest(),
                      phash_of(rgb if not keep_bytes else image.convert("RGB")), changed=not keep_bytes)
