"""Small tileable textures (game and 3D texture packs) turned into full-size backgrounds.

A 256-512 px texture is either tiled (after a random enlargement of 1-2.2x, so the repeat is
not always the same size; the compositor's perspective hides the seams) or upscaled to cover
the background size. Textures that are not surfaces are skipped: normal/specular maps (by
colour statistics and by the name patterns given), mostly transparent decals and flat
colours. Each output records how it was made (``texture`` in ``backgrounds.jsonl``).

Licences can come from a Debian machine-readable copyright file (DEP-5), where the last
``Files:`` paragraph whose pattern matches a file wins.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from docsynth.backgrounds.folder import BackgroundIndex, listed_files, safe_id
from docsynth.backgrounds.licences import licence_code, licence_url
from docsynth.backgrounds.normalize import phash_of
from docsynth.errors import DocsynthError
from docsynth.io import IMAGE_SUFFIXES, atomic_write_bytes
from docsynth.progress import Progress


@dataclass
class CopyrightParagraph:
    patterns: list[str]
    licence: str
    copyright: str


def read_dep5(path: str | Path) -> list[CopyrightParagraph]:
    """The ``Files:`` paragraphs of a DEP-5 ``debian/copyright`` file, in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DocsynthError(f"{path}: cannot read copyright file ({exc.strerror})") from None
    paragraphs = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields and "license" in fields:
            licence = fields["license"].strip().splitlines()[0].strip()
            paragraphs.append(CopyrightParagraph(fields["files"].split(), licence,
                                                 " ".join(fields.get("copyright", "").split())))
    if not paragraphs:
        raise DocsynthError(f"{path}: no 'Files:'/'License:' paragraphs; is it a DEP-5 copyright file?")
    return paragraphs


def dep5_lookup(paragraphs: list[CopyrightParagraph], name: str) -> CopyrightParagraph | None:
    match = None
    for para in paragraphs:  # DEP-5: the last matching paragraph wins
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in para.patterns):
            match = para
    return match


@dataclass
class TextureSettings:
    width: int = 1280
    height: int = 960
    mode: str = "tile"  # tile | upscale
    seed: int = 0
    scale: tuple[float, float] = (1.0, 2.2)  # random enlargement before tiling
    min_side: int = 64  # smaller textures are skipped
    min_std: float = 6.0  # grey-level standard deviation below this: a flat colour
    max_transparent: float = 0.05  # share of (partly) transparent pixels allowed
    exclude: tuple[str, ...] = ()  # fnmatch patterns on the path relative to the source folder
    quality: int = 92


def _skip_reason(rgba: np.ndarray, s: TextureSettings) -> str | None:
    h, w = rgba.shape[:2]
    if min(h, w) < s.min_side:
        return "too-small"
    if (rgba[..., 3] < 250).mean() > s.max_transparent:
        return "transparent"
    rgb = rgba[..., :3].astype(np.float32)
    grey = rgb.mean(axis=2)
    if grey.std() < s.min_std:
        return "flat"
    r, g, b = (rgb[..., c].mean() for c in range(3))
    # Tangent-space normal maps are lavender: x, y around 128, z (blue) near 255.
    if 96 <= r <= 160 and 96 <= g <= 160 and b >= 200:
        return "normal-map"
    return None


def render_texture(rgb: np.ndarray, s: TextureSettings, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Make a ``s.width`` x ``s.height`` background from one texture; says how in a dict."""
    h0, w0 = rgb.shape[:2]
    W, H = s.width, s.height
    cover = max(W / w0, H / h0)
    if s.mode == "upscale" or cover <= 1.0:
        scale = cover
        resized = cv2.resize(rgb, (max(W, round(w0 * scale)), max(H, round(h0 * scale))),
                             interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        y, x = (resized.shape[0] - H) // 2, (resized.shape[1] - W) // 2
        method = "upscale" if scale > 1 else "crop"
        return resized[y:y + H, x:x + W], {"method": method, "scale": round(scale, 4), "offset": [x, y],
                                            "source_size": [w0, h0]}
    scale = float(rng.uniform(*s.scale))
    tw, th = max(1, round(w0 * scale)), max(1, round(h0 * scale))
    tile = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_CUBIC) if scale != 1.0 else rgb
    x, y = int(rng.integers(tw)), int(rng.integers(th))  # random phase of the repeat
    reps_x, reps_y = -(-(W + x) // tw), -(-(H + y) // th)
    big = np.tile(tile, (reps_y, reps_x, 1))
    return big[y:y + H, x:x + W], {"method": "tile", "scale": round(scale, 4), "offset": [x, y],
                                   "repeats": [reps_x, reps_y], "source_size": [w0, h0]}


def import_textures(src: str | Path, out: str | Path, settings: TextureSettings, *, licence: str | None = None,
                    copyright_file: str | Path | None = None, copyright_prefix: str = "",
                    provider: str = "textures", source_url: str | None = None, author: str | None = None,
                    progress: Progress | None = None) -> dict[str, Any]:
    """Turn every usable texture under ``src`` into a background JPEG in ``out``; resumable
    (textures already recorded are skipped) and deterministic for a given ``settings.seed``."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DocsynthError(f"{src}: texture folder not found")
    if settings.mode not in ("tile", "upscale"):
        raise DocsynthError(f"texture mode {settings.mode!r}: use tile or upscale")
    paragraphs = read_dep5(copyright_file) if copyright_file else None
    index = BackgroundIndex(out)
    files = [p for p in listed_files(src) if p.resolve() != out.resolve() and out.resolve() not in p.resolve().parents]
    if not files:  # before any work: nothing would be made, and that is not a success
        raise DocsynthError(f"{src}: no files to import (the folder is empty, or holds only hidden files); "
                            "pass the folder that holds the textures")
    if progress:
        progress.start(len(files), 0)
    counts: Counter[str] = Counter()
    licences: Counter[str] = Counter()
    dirty = 0
    try:
        for path in files:
            rel = path.relative_to(src).as_posix()
            rid = safe_id(f"{provider}-{Path(rel).with_suffix('')}")
            if progress:
                progress.advance()
            if rid in index:
                counts["seen-before"] += 1
                continue
            if any(fnmatch.fnmatchcase(rel, pat) for pat in settings.exclude):
                counts["skipped:excluded"] += 1
                continue
            try:
                with Image.open(path) as im:
                    im.seek(0)
                    rgba = np.asarray(ImageOps.exif_transpose(im).convert("RGBA"))
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
                # A README or a licence file beside the textures is no failure; a broken .png is.
                counts["skipped:undecodable" if path.suffix.lower() in IMAGE_SUFFIXES | {".gif"}
                       else "skipped:not-an-image"] += 1
                continue
            reason = _skip_reason(rgba, settings)
            if reason:
                counts[f"skipped:{reason}"] += 1
                continue
            # The seed of one texture depends only on (seed, its path): adding textures to the
            # folder or resuming does not change the others.
            rng = np.random.default_rng(np.random.SeedSequence([settings.seed, zlib.crc32(rel.encode())]))
            image, how = render_texture(np.ascontiguousarray(rgba[..., :3]), settings, rng)
            pil = Image.fromarray(image, "RGB")
            buf = io.BytesIO()
            pil.save(buf, "JPEG", quality=settings.quality)
            data = buf.getvalue()
            file = f"{rid}.jpg"
            atomic_write_bytes(out / file, data)
            lic_text, holder = licence, author
            if paragraphs is not None:
                para = dep5_lookup(paragraphs, copyright_prefix + rel)
                if para:
                    lic_text, holder = para.licence, holder or para.copyright or None
            code, version = licence_code(lic_text)
            licences[code] += 1
            index.add({"id": rid, "provider": provider, "query": None, "url": source_url, "author": holder,
                       "licence": code, "licence_version": version,
                       "licence_url": licence_url(code, version) or None,
                       "width": image.shape[1], "height": image.shape[0],
                       "sha256": hashlib.sha256(data).hexdigest(), "phash": phash_of(pil), "file": file,
                       "title": rel, "texture": {"source_file": rel, **how}})
            counts[f"made:{how['method']}"] += 1
            dirty += 1
            if dirty >= 50:
                index.save()
                dirty = 0
    finally:
        index.save()
    return {"out": str(out), "textures": len(files), "backgrounds": len(index),
            "counts": dict(sorted(counts.items())), "licences": dict(sorted(licences.items()))}
