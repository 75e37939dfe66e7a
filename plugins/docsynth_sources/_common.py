"""Small helpers shared by the dataset source plugins (not a plugin itself).

A dataset source reads the folder its data was fetched or imported into: the core passes it
as option ``root`` (``<sources.root>/<source name>`` unless configured otherwise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

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
