"""Near-duplicate removal with perceptual hashes, without comparing every pair.

Multi-index hashing: split the 64-bit hash into ``threshold + 1`` disjoint chunks. Two hashes
that differ in at most ``threshold`` bits agree exactly on at least one chunk (pigeonhole), so
only hashes that share a chunk value are compared. For spread-out hashes a chunk of b bits
puts about n / 2**b hashes in each bucket, which makes the work close to linear for the sizes
backgrounds come in (thousands to tens of thousands).

Grouping keeps the largest image: images are visited largest first; each one not yet taken
becomes the keeper of a group made of its untaken neighbours. Every removed image is within
``threshold`` of the image kept in its place, and nothing is removed by a chain of small steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from docsynth.backgrounds.folder import SET_ASIDE, BackgroundIndex, folder_backgrounds, move_aside
from docsynth.backgrounds.normalize import phash_of
from docsynth.errors import DocsynthError

HASH_BITS = 64


def popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x.astype(np.uint64)).astype(np.int64)


def chunk_layout(threshold: int, bits: int = HASH_BITS) -> list[tuple[int, int]]:
    """(shift, width) of ``threshold + 1`` chunks covering all bits, as equal as possible."""
    m = threshold + 1
    widths = [bits // m + (1 if i < bits % m else 0) for i in range(m)]
    layout, shift = [], 0
    for w in widths:
        layout.append((shift, w))
        shift += w
    return layout


def near_pairs(hashes: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i < j) whose hashes differ in at most ``threshold`` bits, and their distances."""
    h = np.asarray(hashes, dtype=np.uint64)
    n = h.size
    if n < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    if threshold < 0:
        raise DocsynthError("dedupe threshold must be 0 or more")
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    # chunks of 1-2 bits would not filter anything: compare all
    layout = [(0, 0)] if threshold >= HASH_BITS // 2 else chunk_layout(threshold)
    for shift, width in layout:
        key = (h >> np.uint64(shift)) & np.uint64((1 << width) - 1) if width else np.zeros(n, np.uint64)
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        lengths = np.diff(np.r_[starts, n])
        run_end = np.repeat(starts + lengths, lengths)  # exclusive end of each position's bucket
        pos = np.arange(n)
        # Compare each position with the one d places further in the same bucket, for growing
        # d; positions whose bucket has ended drop out, so the work is the number of pairs
        # that share a bucket.
        active = pos[run_end - pos > 1]
        d = 1
        while active.size:
            a, b = order[active], order[active + d]
            dist = popcount(h[a] ^ h[b])
            close = dist <= threshold
            if close.any():
                found_i.append(np.minimum(a[close], b[close]))
                found_j.append(np.maximum(a[close], b[close]))
            d += 1
            active = active[run_end[active] - active > d]
    if not found_i:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    i = np.concatenate(found_i).astype(np.int64)
    j = np.concatenate(found_j).astype(np.int64)
    code = np.unique(i * n + j)  # a pair shares several chunks at times: count it once
    pairs = np.stack([code // n, code % n], axis=1)
    return pairs, popcount(h[pairs[:, 0]] ^ h[pairs[:, 1]])


@dataclass
class Group:
    keep: int
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (index, distance to keep)


def group_duplicates(hashes: np.ndarray, sizes: Sequence[Any], threshold: int,
                     confirm: Callable[[int, int], bool] | None = None) -> list[Group]:
    """Groups of near-duplicates; ``sizes[i]`` orders images (bigger is kept), ties by index.
    ``confirm(i, j)``, when given, must also accept a pair found by its hashes."""
    n = len(hashes)
    pairs, dist = near_pairs(hashes, threshold)
    if confirm is not None and len(pairs):
        keep = np.array([confirm(int(i), int(j)) for i, j in pairs], dtype=bool)
        pairs, dist = pairs[keep], dist[keep]
    if not len(pairs):
        return []
    # Neighbour lists in CSR form, both directions.
    src = np.r_[pairs[:, 0], pairs[:, 1]]
    dst = np.r_[pairs[:, 1], pairs[:, 0]]
    dd = np.r_[dist, dist]
    order = np.lexsort((dst, src))
    src, dst, dd = src[order], dst[order], dd[order]
    bounds = np.searchsorted(src, np.arange(n + 1))
    visit = sorted(range(n), key=lambda k: (_neg(sizes[k]), k))
    taken = np.zeros(n, bool)
    groups = []
    for k in visit:
        if taken[k]:
            continue
        taken[k] = True
        lo, hi = bounds[k], bounds[k + 1]
        if lo == hi:
            continue
        group = Group(keep=k)
        for other, d in zip(dst[lo:hi].tolist(), dd[lo:hi].tolist(), strict=True):
            if not taken[other]:
                taken[other] = True
                group.duplicates.append((other, d))
        if group.duplicates:
            groups.append(group)
    return groups


def _neg(size: Any) -> Any:
    return tuple(-v for v in size) if isinstance(size, tuple) else -size


THUMB = 16  # side of the grey thumbnails that confirm a pair


def thumbnail(path: str | Path) -> np.ndarray:
    """16x16 grey thumbnail with zero mean and unit deviation (brightness, contrast and tint
    do not matter), flattened; all zeros for a flat image."""
    grey = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_4)
    if grey is None:
        raise DocsynthError(f"{path}: not a readable image; run `docsynth backgrounds normalize` first")
    t = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    t -= t.mean()
    sd = t.std()
    return t / sd if sd > 1e-6 else np.zeros_like(t)


class ThumbnailCheck:
    """Confirms hash matches by the correlation of small thumbnails.

    A 64-bit DCT hash describes the coarse layout of an image. Stationary textures (pebbles,
    bricks, carpets) have almost none, so two different textures can hash a few bits apart;
    their thumbnails, however, are uncorrelated, while resized, recompressed, tinted or
    slightly cropped copies correlate above 0.95. Thumbnails load only for matched images.
    """

    def __init__(self, paths: Sequence[str], min_correlation: float):
        self.paths = paths
        self.min_correlation = min_correlation
        self.cache: dict[int, np.ndarray] = {}
        self.rejected = 0

    def _thumb(self, i: int) -> np.ndarray:
        if i not in self.cache:
            self.cache[i] = thumbnail(self.paths[i])
        return self.cache[i]

    def __call__(self, i: int, j: int) -> bool:
        ok = float(self._thumb(i) @ self._thumb(j)) / (THUMB * THUMB) >= self.min_correlation
        self.rejected += not ok
        return ok


def dedupe_folder(root: str | Path, threshold: int = 6, apply: bool = False,
                  min_correlation: float = 0.9) -> dict[str, Any]:
    """Find near-duplicate groups in a background folder; with ``apply`` move all but the
    largest of each group to ``duplicates/`` (records stay, pointing at the moved file).
    Pairs found by their hashes must also pass :class:`ThumbnailCheck` (0 turns it off)."""
    started = time.perf_counter()
    root = Path(root)
    if not root.is_dir():
        raise DocsynthError(f"{root}: background folder not found")
    index = BackgroundIndex(root)
    refs = folder_backgrounds(root)
    files = [str(ref.path) for ref in refs]  # a folder's backgrounds are files
    hashes, sizes = [], []
    for ref, file in zip(refs, files, strict=True):
        rec = ref.meta
        phash, width, height = rec.get("phash"), rec.get("width"), rec.get("height")
        if not phash or not width or not height:  # an image nobody normalised: hash it now
            try:
                with Image.open(file) as im:
                    phash, (width, height) = phash_of(im.convert("RGB")), im.size
            except OSError:
                raise DocsynthError(f"{ref.path}: not a readable image; run `docsynth backgrounds normalize` first") from None
        hashes.append(int(phash, 16))
        sizes.append((int(width) * int(height), Path(file).stat().st_size))
    hashed = time.perf_counter()
    check = ThumbnailCheck(files, min_correlation) if min_correlation > 0 else None
    groups = group_duplicates(np.array(hashes, dtype=np.uint64), sizes, threshold, check)
    grouped = time.perf_counter()

    def rel(k: int) -> str:
        return Path(files[k]).relative_to(root).as_posix()

    report = [{"keep": refs[g.keep].id, "keep_file": rel(g.keep),
               "duplicates": [{"id": refs[k].id, "file": rel(k), "distance": d} for k, d in g.duplicates]}
              for g in groups]
    if apply:
        records = index.by_file()
        for g in groups:
            for k, d in g.duplicates:
                old = rel(k)
                moved = move_aside(root, Path(files[k]), SET_ASIDE[0]).relative_to(root).as_posix()
                record = records.get(old)
                if record is None:  # an image without a record gets one, so the move is traceable
                    record = {"id": refs[k].id, "provider": "folder"}
                    index.add(record)
                record.update({"file": moved, "duplicate_of": refs[g.keep].id, "distance": d})
        index.save()
    removed = sum(len(g.duplicates) for g in groups)
    return {"folder": str(root), "images": len(refs), "threshold": threshold, "min_correlation": min_correlation,
            "unconfirmed": check.rejected if check else 0, "groups": report,
            "duplicates": removed, "kept": len(refs) - removed, "applied": apply,
            "seconds": {"hash": round(hashed - started, 3), "group": round(grouped - hashed, 3)}}
