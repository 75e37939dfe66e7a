"""Desk-object cut-outs for the ``cutouts`` compositor step, from Debian's ``openclipart-png``.

openclipart-png (Debian main) holds about 8,000 public-domain clip-art PNGs with alpha. This
script keeps the ones that look like things lying on a desk next to a page (fruit, mugs and
cups, pens, pencils, markers, phones, computer mice, keyboards, calculators, staplers,
scissors, glasses, keys, bottles...), chosen by folder and file name, drops black-and-white
variants and images that are not a cut-out (too little or too much transparency), trims each to
its opaque area, limits its longer side to ``--max-side`` px, and writes

    OUT/images/<id>.png      RGBA
    OUT/cutouts.jsonl        id, image, original path, package, licence, width, height

Usage (recipes/offline/cutouts.sh runs it after unpacking the package):
    python recipes/offline/cutouts.py --tree cache/clipart/tree/usr/share/openclipart/png --out data/cutouts
Rerunning skips files already written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np

PACKAGE = "openclipart-png (Debian)"
LICENCE = "public-domain"  # debian/copyright: Creative Commons Public Domain Dedication
# A file is kept when its path (folder and name, lower case) matches one of these words ...
KEEP = re.compile(r"(^|[/_\-. ])(apple|orange|lemon|lime|banana|pear|peach|plum|cherr|grape|tomato|"
                  r"strawberr|kiwi|melon|fruit|mug|cup|coffee|tea|bottle|glass|can|jar|pen|pencil|crayon|"
                  r"marker|highlighter|eraser|stapler|scissor|ruler|clip|tape|calculator|phone|mobile|"
                  r"handphone|mouse|keyboard|remote|camera|headphone|glasses|spectacle|key|wallet|watch|"
                  r"clock|cookie|donut|doughnut|sandwich|candy|sweet|ball|toy|dice|plant|cactus|flower|"
                  r"lamp|book|notebook|folder|envelope|box)")
# ... from these folders only (no people, animals, logos, maps, buttons, signs)
FOLDERS = ("food", "office", "computer", "electronics", "containers", "education", "recreation",
           "household", "tools", "plants", "science")
SKIP = re.compile(r"(_bw|bw_|black|silhouette|icon|button|logo|sign|symbol|cartoon_|face|man_|woman|boy|girl|"
                  r"outline|frame|border|pattern|text|label|banner|map|flag)")


def wanted(rel: str) -> bool:
    low = rel.lower()
    return low.split("/")[0] in FOLDERS and bool(KEEP.search(low)) and not SKIP.search(low)


def cutout(path: Path, max_side: int) -> np.ndarray | None:
    """The trimmed RGBA cut-out, or None when the image is not one (no alpha, nearly all
    opaque or nearly all transparent, too small)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        return None
    alpha = img[..., 3]
    opaque = alpha > 127
    share = opaque.mean()
    if not 0.15 <= share <= 0.9:
        return None
    ys, xs = np.nonzero(opaque)
    img = img[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = img.shape[:2]
    if min(h, w) < 24 or max(h, w) > 8 * min(h, w) and min(h, w) < 16:
        return None
    f = min(1.0, max_side / max(h, w))
    if f < 1.0:
        img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    rgb = img[..., :3].reshape(-1, 3)[img[..., 3].reshape(-1) > 127].astype(np.float32)
    if rgb.std(axis=0).mean() < 6:  # a flat single-colour shape: not an object
        return None
    return img


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", required=True, type=Path, help="openclipart png folder (…/usr/share/openclipart/png)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--max-side", type=int, default=256)
    args = ap.parse_args(argv)
    if not args.tree.is_dir():
        print(f"cutouts: {args.tree}: not a folder; unpack openclipart-png first (recipes/offline/cutouts.sh)",
              file=sys.stderr)
        return 2
    images = args.out / "images"
    images.mkdir(parents=True, exist_ok=True)
    records = []
    for path in sorted(args.tree.rglob("*.png")):
        rel = path.relative_to(args.tree).as_posix()
        if not wanted(rel):
            continue
        ident = hashlib.sha1(rel.encode()).hexdigest()[:12]
        target = images / f"{ident}.png"
        if not target.exists():
            img = cutout(path, args.max_side)
            if img is None:
                continue
            tmp = target.with_suffix(".tmp.png")
            cv2.imwrite(str(tmp), img)
            os.replace(tmp, target)
        h, w = cv2.imread(str(target), cv2.IMREAD_UNCHANGED).shape[:2]
        records.append({"id": ident, "image": f"images/{ident}.png", "original": rel, "package": PACKAGE,
                        "licence": LICENCE, "width": w, "height": h})
    tmp = args.out / "cutouts.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(tmp, args.out / "cutouts.jsonl")
    print(f"cutouts: {len(records)} cut-outs ({LICENCE}) in {args.out}", file=sys.stderr)
    return 0 if records else 1


if __name__ == "__main__":
    sys.exit(main())
