"""Small helpers shared by the dataset source plugins (not a plugin itself).

A dataset source reads the folder its data was fetched or imported into: the core passes it
as option ``root`` (``<sources.root>/<source name>`` unless configured otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from docsynth.config import root_folder
from docsynth.errors import DocsynthError
from docsynth.io import IMAGE_SUFFIXES, read_image

# Junk that archives made on macOS or Windows carry along; never a document.
JUNK_DIRS = {"__MACOSX", ".DS_Store", "Thumbs.db"}


def dataset_root(name: str, options: dict[str, Any], hint: str | None = None) -> Path:
    """The source's data folder, or an error that says how to get the data there."""
    hint = hint or (f"run 'docsynth sources fetch {name}' (or 'docsynth sources import {name} ARCHIVE_OR_DIR'), "
                    f"or set sources.options.{name}.root")
    return root_folder(options, f"source {name!r} needs option 'root' (set sources.options.{name}.root)",
                       f"{{root}}: no {name} data here; {hint}")


def image_files(root: Path, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files under ``root`` in a stable order, without hidden files and archive junk."""
    suffixes = {s.lower() for s in suffixes}
    out = []
    for p in root.rglob("*"):
        if p.suffix.lower() not in suffixes or not p.is_file():
            continue
        parts = p.relative_to(root).parts
        if any(part.startswith(".") or part in JUNK_DIRS for part in parts):
            continue
        out.append(p)
    return sorted(out)


def choose(options: dict[str, Any], key: str, allowed: Iterable[str], source: str) -> set[str] | None:
    """Parse a list option (YAML list or comma string); None when not set (= everything)."""
    value = options.get(key)
    if value is None:
        return None
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value]
    allowed = list(allowed)
    bad = [v for v in items if v not in allowed]
    if bad:
        raise DocsynthError(f"sources.options.{source}.{key}: unknown {', '.join(bad)}; "
                            f"use some of {', '.join(allowed)}")
    return set(items)


def read_page(path: str | None):
    if not path:
        raise DocsynthError("document has no file path")
    return read_image(path)


def box_word(text: Any, box: Any, dx: float = 0.0, dy: float = 0.0) -> dict[str, Any] | None:
    """A ``Page.words`` entry from an axis-aligned box ``[x0, y0, x1, y1]`` or an 8-number
    polygon (clockwise from the top-left), shifted by (dx, dy); None for malformed input."""
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError):
        return None
    if len(values) == 4:
        x0, y0, x1, y1 = values
        poly = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    elif len(values) == 8:
        poly = [values[i:i + 2] for i in range(0, 8, 2)]
    else:
        return None
    text = str(text or "").strip()
    if not text:
        return None
    return {"text": text, "poly": [[round(x - dx, 2), round(y - dy, 2)] for x, y in poly]}


def read_json_words(path: str | None, read: Any) -> list[dict[str, Any]] | None:
    """Words from an annotation file through ``read`` (parsed JSON -> words); None when there is
    no file, and an error line naming the file when it cannot be parsed."""
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DocsynthError(f"{path}: unreadable annotation ({exc})") from None
    return read(data)
