"""Build the input folders of the `cpu` preset (run by recipes/cpu/train.sh).

documents: 800 procedural pages (seed 7, 640 px long side) + the Debian PDF pages of
recipes/offline/pages.sh; backgrounds: 300 procedural surfaces (seed 7, 640x480) + the
textures of recipes/offline/backgrounds.sh. Both are plain image folders (the `folder` source
and provider read them recursively, sorted by path), so the layout below fixes the order the
online stream indexes them in. Rerunning rewrites the same bytes.

    python recipes/cpu/inputs.py --pdf data/documents-pdf --textures data/backgrounds-textures --out data/cpu
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import cv2

from docsynth import plugins

DOC_SEED, DOC_COUNT, DOC_LONG_SIDE = 7, 800, 640
BG_SEED, BG_COUNT, BG_SIZE = 7, 300, [640, 480]
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 92]


def copy_tree(src: Path, dst: Path, pattern: str) -> int:
    """Copy the files matching ``pattern`` under ``src`` to ``dst``, keeping relative paths."""
    n = 0
    for path in sorted(src.glob(pattern)):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdf", type=Path, required=True, help="prepared PDF pages (recipes/offline/pages.sh)")
    ap.add_argument("--textures", type=Path, required=True, help="texture backgrounds (recipes/offline/backgrounds.sh)")
    ap.add_argument("--out", type=Path, default=Path("data/cpu"))
    args = ap.parse_args()
    docs, bgs = args.out / "documents", args.out / "backgrounds"
    (docs / "proc").mkdir(parents=True, exist_ok=True)
    (bgs / "proc").mkdir(parents=True, exist_ok=True)

    source = plugins.get("source", "procedural")
    for ref in source.list_documents({"seed": DOC_SEED, "count": DOC_COUNT, "long_side": DOC_LONG_SIDE}):
        target = docs / "proc" / f"{ref.id}.jpg"
        if not target.exists():
            cv2.imwrite(str(target), source.load_document(ref).image, JPEG)
    provider = plugins.get("background", "procedural")
    for ref in provider.list_backgrounds({"seed": BG_SEED, "count": BG_COUNT, "size": BG_SIZE}):
        target = bgs / "proc" / f"{ref.id}.jpg"
        if not target.exists():
            cv2.imwrite(str(target), provider.load_background(ref), JPEG)
    # prepared pages live in images/<source>/...; their masks are full pages, not needed here
    n_pdf = copy_tree(args.pdf / "images" / "pdf", docs / "pdf", "**/*.jpg")
    n_tex = copy_tree(args.textures, bgs / "tex", "*.jpg")  # top level only: set-aside files stay out
    print(f"{args.out}: {DOC_COUNT} procedural + {n_pdf} PDF pages, {BG_COUNT} procedural + {n_tex} texture backgrounds")


if __name__ == "__main__":
    main()
