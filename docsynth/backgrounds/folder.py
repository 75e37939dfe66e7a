"""Background folders: their records (:class:`BackgroundIndex`), listing them, normalising a
folder in place, and collecting from a provider that does not scrape.

A background folder holds JPEGs plus ``backgrounds.jsonl``, one record per image: id,
provider, query, url (the source page), author, licence, width, height, sha256, phash and
``file`` (path relative to the folder), with optional title, licence URL, attribution and, for
imported textures, how the texture was tiled. Files the pipeline sets aside go to
subfolders that no provider lists: ``duplicates/`` (dedupe), ``originals/`` (normalize) and
``rejected/`` (normalize). ``rejected.jsonl`` remembers downloads that can never become
backgrounds, so a resumed scrape does not fetch them again.

Scraping into a folder is :mod:`docsynth.backgrounds.scrape`, licences are
:mod:`docsynth.backgrounds.licences`, credits :mod:`docsynth.backgrounds.credits`.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docsynth import options as options_mod
from docsynth.backgrounds.licences import licence_code
from docsynth.backgrounds.normalize import Rejected, normalize_bytes
from docsynth.config import root_folder
from docsynth.errors import DocsynthError
from docsynth.io import (
    IMAGE_SUFFIXES,
    atomic_write_bytes,
    docsynth_outputs_under,
    read_image,
    read_jsonl,
    write_image,
    write_jsonl,
)
from docsynth.kinds import BackgroundRef
from docsynth.progress import Progress

if TYPE_CHECKING:  # the HTTP and image code loads only when a command needs it
    pass

RECORDS = "backgrounds.jsonl"
REJECTED = "rejected.jsonl"
SET_ASIDE = ("duplicates", "originals", "rejected")  # never listed as backgrounds
OWN_FILES = {RECORDS, REJECTED, "CREDITS.md", "credits.csv"}


# ---------------------------------------------------------------------------------------------
# The records of a folder
# ---------------------------------------------------------------------------------------------


def safe_id(text: str) -> str:
    """A record id that is also a safe file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:160] or "image"


class BackgroundIndex:
    """``backgrounds.jsonl`` of one folder, keyed by id, in insertion order. Saved atomically."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.records: dict[str, dict[str, Any]] = {}
        path = self.root / RECORDS
        if path.is_file():
            for row in read_jsonl(path):
                if "id" not in row:
                    raise DocsynthError(f"{path}: a record has no 'id'; fix or remove that line")
                self.records[str(row["id"])] = row

    @property
    def path(self) -> Path:
        return self.root / RECORDS

    def __contains__(self, rid: str) -> bool:
        return rid in self.records

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: dict[str, Any]) -> None:
        self.records[str(record["id"])] = record

    def by_file(self) -> dict[str, dict[str, Any]]:
        return {r["file"]: r for r in self.records.values() if r.get("file")}

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_jsonl(self.path, self.records.values())


def read_rejected(root: Path) -> dict[str, dict[str, Any]]:
    path = Path(root) / REJECTED
    return {str(r["id"]): r for r in read_jsonl(path)} if path.is_file() else {}


def listed_files(root: str | Path) -> Iterator[Path]:
    """Every file under ``root`` except set-aside subfolders, hidden files and our own
    metadata files, in a stable order."""
    root = Path(root)
    every = sorted(root.rglob("*"))
    ours = docsynth_outputs_under(root, every)  # a dataset or scan written inside: never backgrounds
    for path in every:
        rel = path.relative_to(root)
        if not path.is_file() or any(p.startswith(".") for p in rel.parts) or any(d in ours for d in path.parents):
            continue
        if rel.parts[0] in SET_ASIDE or (len(rel.parts) == 1 and rel.name in OWN_FILES):
            continue
        yield path


def folder_backgrounds(root: str | Path, provider: str | None = None, ref_provider: str = "folder") -> list[BackgroundRef]:
    """References to the images of a background folder. With ``backgrounds.jsonl``, ids and
    licences come from it; images without a record are listed by their relative path.
    ``provider`` keeps only records of that provider (for scraping providers)."""
    root = Path(root)
    index = BackgroundIndex(root)
    refs: list[BackgroundRef] = []
    recorded: set[str] = set()
    for rec in index.records.values():
        rel = rec.get("file")
        if not rel:
            continue
        recorded.add(rel)
        if provider is not None and rec.get("provider") != provider:
            continue
        path = root / rel
        if Path(rel).parts[0] in SET_ASIDE or not path.is_file():
            continue
        refs.append(BackgroundRef(id=str(rec["id"]), provider=ref_provider, path=str(path), meta=dict(rec)))
    if provider is None:
        for path in listed_files(root):
            rel = path.relative_to(root).as_posix()
            if rel in recorded or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            refs.append(BackgroundRef(id=str(Path(rel).with_suffix("")), provider=ref_provider, path=str(path)))
    return refs


class ScrapedBackgrounds:
    """list/load for a scraping provider: what it scraped into the folder ``options['root']``
    (only its own records). Providers subclass this and add ``search``."""

    name = ""

    def list_backgrounds(self, options: dict[str, Any]) -> list[BackgroundRef]:
        root = root_folder(options, f"background provider {self.name!r} needs option 'root': the folder "
                                    f"`docsynth backgrounds scrape --provider {self.name}` wrote",
                           "{root}: folder not found (background option 'root')")
        return folder_backgrounds(root, provider=self.name, ref_provider=self.name)

    def load_background(self, ref: BackgroundRef):
        return read_image(str(ref.path))  # listed from a folder: always a file


# ---------------------------------------------------------------------------------------------
# Normalising a folder in place
# ---------------------------------------------------------------------------------------------


def move_aside(root: Path, path: Path, folder: str) -> Path:
    """Move ``path`` to ``root/folder/<same relative path>`` without overwriting anything."""
    target = root / folder / path.relative_to(root)
    n = 1
    while target.exists():
        target = target.with_name(f"{target.stem}.{n}{target.suffix}")
        n += 1
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), str(target))
    return target


# Suffixes of files that are meant to be pictures: one that does not decode is set aside in
# rejected/. Any other file that does not decode (README.txt, LICENSE) stays where it is.
IMAGE_LIKE = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".heic",
              ".heif", ".avif", ""}


def normalize_folder(root: str | Path, *, min_width: int = 64, min_height: int = 64, max_side: int = 0,
                     quality: int = 92, licence: str | None = None, provider: str = "folder",
                     progress: Progress | None = None) -> dict[str, Any]:
    """Make every file of ``root`` an upright RGB JPEG with a record, in place.

    Converted originals go to ``originals/``, images that cannot be backgrounds to
    ``rejected/`` (counted by reason), files that are not images (README.txt) stay where they
    are; nothing is deleted. Running it twice changes nothing.
    """
    root = Path(root)
    if not root.is_dir():
        raise DocsynthError(f"{root}: background folder not found")
    index = BackgroundIndex(root)
    rejected = read_rejected(root)
    by_file = index.by_file()
    files = list(listed_files(root))
    if progress:
        progress.start(len(files), 0)
    counts: Counter[str] = Counter()
    code, version = licence_code(licence) if licence else ("unknown", "")
    try:
        for path in files:
            rel = path.relative_to(root).as_posix()
            rec = by_file.get(rel)
            try:
                norm = normalize_bytes(path.read_bytes(), min_width=min_width, min_height=min_height,
                                       max_side=max_side, quality=quality)
            except Rejected as exc:
                if path.suffix.lower() not in IMAGE_LIKE:  # a README or a licence file beside the
                    counts["not-an-image"] += 1           # images is no rejected background: it stays
                    if progress:
                        progress.advance()
                    continue
                counts[f"rejected:{exc.reason}"] += 1
                moved = move_aside(root, path, "rejected").relative_to(root).as_posix()
                rid = rec["id"] if rec else safe_id(str(Path(rel).with_suffix("")))
                if rec:
                    index.records.pop(rec["id"], None)
                rejected[rid] = {"id": rid, "file": moved, "reason": exc.reason, **({"record": rec} if rec else {})}
                if progress:
                    progress.advance()
                continue
            new_rel = rel
            if norm.changed or path.suffix.lower() not in (".jpg", ".jpeg"):
                new_rel = Path(rel).with_suffix(".jpg").as_posix()
                if new_rel != rel and (root / new_rel).exists():
                    new_rel = Path(rel).with_name(f"{path.stem}-{path.suffix.lstrip('.').lower()}.jpg").as_posix()
                move_aside(root, path, "originals")
                atomic_write_bytes(root / new_rel, norm.jpeg)
                counts["converted"] += 1
            else:
                counts["kept"] += 1
            if rec is None:
                rid = safe_id(str(Path(rel).with_suffix("")))
                while rid in index:
                    rid += "_"
                rec = {"id": rid, "provider": provider, "query": None, "url": None, "author": None,
                       "licence": code, "licence_version": version}
                index.add(rec)
                counts["recorded"] += 1
            rec.update({"file": new_rel, "width": norm.width, "height": norm.height,
                        "sha256": norm.sha256, "phash": norm.phash})
            if progress:
                progress.advance()
    finally:
        index.save()
        if rejected:
            write_jsonl(root / REJECTED, rejected.values())
    return {"folder": str(root), "files": len(files), "images": len(index), **dict(sorted(counts.items()))}


# ---------------------------------------------------------------------------------------------
# Collecting from a provider that does not scrape
# ---------------------------------------------------------------------------------------------


def collect_backgrounds(provider: Any, name: str, out: str | Path, *, count: int, seed: int,
            options: dict[str, Any] | None = None, jpeg_quality: int = 92,
            progress: Progress | None = None) -> dict[str, Any]:
    """Fill ``out`` with ``count`` backgrounds of a non-scraping provider (procedural, folder...),
    then give them records (licence, size, hashes) with :func:`normalize_folder`. Resumable:
    files already written are kept."""
    out = Path(out)
    built = options_mod.build(provider, options, f"backgrounds.options.{name}", {"seed": seed, "count": count})
    refs = provider.list_backgrounds(built)[:count]
    if not refs:
        raise DocsynthError(f"backgrounds.provider: {name!r} listed no backgrounds; check backgrounds.options")
    targets = [out / "images" / f"{safe_id(ref.id)}.jpg" for ref in refs]
    done = sum(t.is_file() for t in targets)
    if progress:
        progress.start(len(refs), done)
    for ref, target in zip(refs, targets, strict=True):
        if target.is_file():
            continue
        write_image(target, provider.load_background(ref), jpeg_quality)
        if progress:
            progress.advance()
    licence = str((refs[0].meta or {}).get("licence") or getattr(provider, "licence", "") or "") or None
    summary = normalize_folder(out, min_width=1, min_height=1, quality=jpeg_quality, licence=licence, provider=name)
    return {"written": len(refs) - done, "resumed": done, "normalize": summary}


