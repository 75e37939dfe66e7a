"""Background folders: their records, scraping into them, normalising and crediting them.

A background folder holds JPEGs plus ``backgrounds.jsonl``, one record per image: id,
provider, query, url (the source page), author, licence, width, height, sha256, phash and
``file`` (path relative to the folder), with optional title, licence URL, attribution and, for
imported textures, how the texture was tiled. Files the pipeline sets aside go to
subfolders that no provider lists: ``duplicates/`` (dedupe), ``originals/`` (normalize) and
``rejected/`` (normalize). ``rejected.jsonl`` remembers downloads that can never become
backgrounds, so a resumed scrape does not fetch them again.

Scraping is provider-agnostic: a provider's ``search(query, options, client)`` (the
:class:`docsynth.kinds.ScrapingProvider` protocol) yields
:class:`Candidate` records page by page; this module filters, downloads (through the polite
client), normalises and records them.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from docsynth.errors import DocsynthError
from docsynth.io import IMAGE_SUFFIXES, atomic_write_bytes, atomic_write_text, read_image, read_jsonl, write_jsonl
from docsynth.kinds import BackgroundRef

if TYPE_CHECKING:  # the HTTP and image code loads only when a command needs it
    from docsynth.backgrounds.http import PoliteClient
    from docsynth.backgrounds.normalize import Normalized

RECORDS = "backgrounds.jsonl"
REJECTED = "rejected.jsonl"
SET_ASIDE = ("duplicates", "originals", "rejected")  # never listed as backgrounds
DEFAULT_LICENCES = ("cc0", "pdm", "by", "by-sa")
NO_ATTRIBUTION = {"cc0", "pdm"}
SIZE_REASONS = ("too-small", "aspect")  # depend on the run's settings, unlike bad content
CC_CODES = ("by-nc-nd", "by-nc-sa", "by-nc", "by-nd", "by-sa", "by", "sampling+", "nc-sampling+")
OWN_FILES = {RECORDS, REJECTED, "CREDITS.md", "credits.csv"}


# ---------------------------------------------------------------------------------------------
# Licences
# ---------------------------------------------------------------------------------------------


def licence_code(text: str | None) -> tuple[str, str]:
    """(code, version) from the many ways licences are written: 'CC BY-SA 4.0',
    'cc-by-sa-4.0', 'by-sa', 'Public domain', 'CC0'. Unknown licences keep their own name."""
    if not text:
        return "unknown", ""
    raw = text.strip()
    t = raw.lower().replace("_", "-").replace(" ", "-")
    if t in ("cc0", "cc-zero", "cc0-1.0") or t.startswith("cc0"):
        return "cc0", "1.0"
    if t in ("pdm", "pd", "public-domain", "publicdomain") or t.startswith("public-domain") or t.startswith("pd-"):
        return "pdm", ""
    version_match = re.search(r"-?(\d+(?:\.\d+)*)$", t)
    version = version_match.group(1) if version_match else ""
    core = t[: version_match.start()] if version_match else t
    core = core.removeprefix("cc-").removeprefix("cc")
    core = core.strip("-")
    if core in CC_CODES:
        return core, version
    return raw, ""


def licence_name(code: str, version: str = "") -> str:
    if code == "cc0":
        return "CC0 1.0"
    if code == "pdm":
        return "Public Domain Mark 1.0"
    if code in CC_CODES:
        return f"CC {code.upper()}" + (f" {version}" if version else "")
    return code


def licence_url(code: str, version: str = "") -> str:
    if code == "cc0":
        return "https://creativecommons.org/publicdomain/zero/1.0/"
    if code == "pdm":
        return "https://creativecommons.org/publicdomain/mark/1.0/"
    if code in CC_CODES:
        return f"https://creativecommons.org/licenses/{code}/{version or '4.0'}/"
    return ""


def licence_allowed(code: str, allowed: Iterable[str]) -> bool:
    allowed = {a.strip().lower() for a in allowed}
    return bool(allowed & {"any", "*", "all"}) or code.lower() in allowed


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
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or any(p.startswith(".") for p in rel.parts):
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
        root = options.get("root")
        if not root:
            raise DocsynthError(f"background provider {self.name!r} needs option 'root': the folder "
                                f"`docsynth backgrounds scrape --provider {self.name}` wrote")
        if not Path(root).is_dir():
            raise DocsynthError(f"{root}: folder not found (background option 'root')")
        return folder_backgrounds(root, provider=self.name, ref_provider=self.name)

    def load_background(self, ref: BackgroundRef):
        return read_image(ref.path)


# ---------------------------------------------------------------------------------------------
# Scraping
# ---------------------------------------------------------------------------------------------


@dataclass
class Candidate:
    """One search result, before download. ``licence`` is a code from :func:`licence_code`."""

    id: str  # the provider's own id (stable across runs)
    image_url: str  # what to download
    url: str | None = None  # the page a person looks at: landing page, file description page
    title: str | None = None
    author: str | None = None
    author_url: str | None = None
    licence: str = "unknown"
    licence_version: str = ""
    licence_url: str | None = None
    attribution: str | None = None
    width: int | None = None  # as the API reports them (before download); None: unknown
    height: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScrapeSettings:
    licences: tuple[str, ...] = DEFAULT_LICENCES
    min_width: int = 1280
    min_height: int = 0
    min_aspect: float = 1.0  # width / height; landscape surfaces
    max_aspect: float = 3.0
    max_side: int = 2560  # bigger downloads are scaled down (disk, decode time)
    quality: int = 92
    flush_every: int = 20  # records saved at least every N images (and on any exit)


def settings_from_config(section: dict[str, Any]) -> ScrapeSettings:
    return ScrapeSettings(licences=tuple(section["licences"]), min_width=section["min_width"],
                          min_height=section["min_height"], min_aspect=float(section["min_aspect"]),
                          max_aspect=float(section["max_aspect"]), max_side=section["max_side"],
                          quality=section["jpeg_quality"])


def client_from_config(section: dict[str, Any]) -> PoliteClient:
    from docsynth.backgrounds.http import PoliteClient

    return PoliteClient(contact=section["contact"], interval=float(section["rate_limit"]),
                        retries=section["retries"], backoff=float(section["backoff"]),
                        max_wait=float(section["max_wait"]), timeout=float(section["timeout"]))


def _size_problem(width: int | None, height: int | None, s: ScrapeSettings) -> str | None:
    if not width or not height:
        return None
    if width < s.min_width or height < s.min_height:
        return "too-small"
    aspect = width / height
    if aspect < s.min_aspect or aspect > s.max_aspect:
        return "aspect"
    return None


def scrape(provider: Any, queries: list[str], out: str | Path, *, limit: int, settings: ScrapeSettings,
           client: PoliteClient, options: dict[str, Any],
           on_start: Callable[[int, int], None] | None = None,
           progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Collect up to ``limit`` new-or-kept images per query into ``out``; resumable.

    Images already recorded for (provider, query) count towards the limit, ids seen before
    (recorded or rejected) are skipped without a download.
    """
    from docsynth.backgrounds.http import FetchError
    from docsynth.backgrounds.normalize import Rejected, normalize_bytes

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = BackgroundIndex(out)
    rejected = read_rejected(out)
    by_sha = {r.get("sha256"): rid for rid, r in index.records.items() if r.get("sha256")}
    counts: Counter[str] = Counter()
    have = Counter(r.get("query") for r in index.records.values() if r.get("provider") == provider.name)
    if on_start:
        on_start(limit * len(queries), sum(min(have[q], limit) for q in queries))
    added = 0
    dirty = 0
    exhausted: list[str] = []  # queries whose results ran out before the limit

    def save() -> None:
        index.save()
        if rejected:
            write_jsonl(out / REJECTED, rejected.values())

    def reject(rid: str, cand: Candidate, query: str, reason: str, remember: bool, size=None) -> None:
        counts[reason] += 1
        if remember:
            rejected[rid] = {"id": rid, "provider": provider.name, "query": query,
                             "image_url": cand.image_url, "url": cand.url, "reason": reason,
                             **({"width": size[0], "height": size[1]} if size else {})}

    def seen(rid: str) -> bool:
        """Recorded, or rejected for a reason that still holds (a size rejection is retried
        when this run accepts that size)."""
        old = rejected.get(rid)
        if old and old.get("reason") in SIZE_REASONS:
            return _size_problem(old.get("width"), old.get("height"), settings) is not None
        return rid in index or old is not None

    try:
        for query in queries:
            if have[query] >= limit:
                continue
            for cand in _search(provider, query, options, client):
                rid = safe_id(f"{provider.name}-{cand.id}")
                if seen(rid):
                    counts["seen-before"] += 1
                    continue
                if not licence_allowed(cand.licence, settings.licences):
                    counts["licence"] += 1
                    continue
                problem = _size_problem(cand.width, cand.height, settings)
                if problem:
                    counts[problem] += 1
                    continue
                try:
                    reply = client.get(cand.image_url, headers={"Accept": "image/*"})
                except FetchError as exc:
                    reject(rid, cand, query, f"http-{exc.status}" if exc.status else "network", exc.permanent)
                    continue
                try:
                    if reply.content_type in ("text/html", "application/json", "text/plain"):
                        raise Rejected("html" if reply.content_type == "text/html" else "text", reply.content_type)
                    norm = normalize_bytes(reply.body, max_side=settings.max_side, quality=settings.quality)
                    problem = _size_problem(norm.width, norm.height, settings)
                    if problem:
                        reject(rid, cand, query, problem, True, (norm.width, norm.height))
                        continue
                    if norm.sha256 in by_sha:
                        raise Rejected("same-file", by_sha[norm.sha256])
                except Rejected as exc:
                    reject(rid, cand, query, exc.reason, True)
                    continue
                rel = f"{rid}.jpg"
                atomic_write_bytes(out / rel, norm.jpeg)
                index.add(_record(rid, provider.name, query, cand, rel, norm))
                by_sha[norm.sha256] = rid
                have[query] += 1
                added += 1
                dirty += 1
                if progress:
                    progress(1)
                if dirty >= settings.flush_every:
                    save()
                    dirty = 0
                if have[query] >= limit:
                    break
            else:
                exhausted.append(query)
    finally:
        save()
    return {"out": str(out), "provider": provider.name, "added": added, "total": len(index),
            "per_query": {q: have[q] for q in queries}, "exhausted": exhausted,
            "rejected": dict(sorted(counts.items())),
            "requests": client.requests, "retry_waits": len(client.waits)}


def _search(provider: Any, query: str, options: dict[str, Any], client: PoliteClient) -> Iterator[Candidate]:
    """The provider's results; an API that keeps failing ends the run with one line (what was
    collected so far is saved, and the next run resumes)."""
    from docsynth.backgrounds.http import FetchError

    try:
        yield from provider.search(query, options, client)
    except FetchError as exc:
        raise DocsynthError(f"{provider.name}: search for {query!r} failed: {exc}; "
                            "check the provider's api_url/options or rerun later to resume") from None


def _record(rid: str, provider: str, query: str | None, cand: Candidate, rel: str, norm: Normalized) -> dict[str, Any]:
    rec = {"id": rid, "provider": provider, "query": query, "url": cand.url, "author": cand.author,
           "licence": cand.licence, "width": norm.width, "height": norm.height, "sha256": norm.sha256,
           "phash": norm.phash, "file": rel, "image_url": cand.image_url, "title": cand.title,
           "licence_version": cand.licence_version,
           "licence_url": cand.licence_url or licence_url(cand.licence, cand.licence_version) or None,
           "author_url": cand.author_url, "attribution": cand.attribution}
    rec.update(cand.extra)
    return rec


# ---------------------------------------------------------------------------------------------
# Normalising a folder in place
# ---------------------------------------------------------------------------------------------


def _move_aside(root: Path, path: Path, folder: str) -> Path:
    """Move ``path`` to ``root/folder/<same relative path>`` without overwriting anything."""
    target = root / folder / path.relative_to(root)
    n = 1
    while target.exists():
        target = target.with_name(f"{target.stem}.{n}{target.suffix}")
        n += 1
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), str(target))
    return target


def normalize_folder(root: str | Path, *, min_width: int = 64, min_height: int = 64, max_side: int = 0,
                     quality: int = 92, licence: str | None = None, provider: str = "folder",
                     progress: Callable[[int], None] | None = None,
                     on_start: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Make every file of ``root`` an upright RGB JPEG with a record, in place.

    Converted originals go to ``originals/``, files that cannot be backgrounds to
    ``rejected/`` (counted by reason); nothing is deleted. Running it twice changes nothing.
    """
    from docsynth.backgrounds.normalize import Rejected, normalize_bytes

    root = Path(root)
    if not root.is_dir():
        raise DocsynthError(f"{root}: background folder not found")
    index = BackgroundIndex(root)
    rejected = read_rejected(root)
    by_file = index.by_file()
    files = list(listed_files(root))
    if on_start:
        on_start(len(files), 0)
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
                counts[f"rejected:{exc.reason}"] += 1
                moved = _move_aside(root, path, "rejected").relative_to(root).as_posix()
                rid = rec["id"] if rec else safe_id(str(Path(rel).with_suffix("")))
                if rec:
                    index.records.pop(rec["id"], None)
                rejected[rid] = {"id": rid, "file": moved, "reason": exc.reason, **({"record": rec} if rec else {})}
                if progress:
                    progress(1)
                continue
            new_rel = rel
            if norm.changed or path.suffix.lower() not in (".jpg", ".jpeg"):
                new_rel = Path(rel).with_suffix(".jpg").as_posix()
                if new_rel != rel and (root / new_rel).exists():
                    new_rel = Path(rel).with_name(f"{path.stem}-{path.suffix.lstrip('.').lower()}.jpg").as_posix()
                _move_aside(root, path, "originals")
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
                progress(1)
    finally:
        index.save()
        if rejected:
            write_jsonl(root / REJECTED, rejected.values())
    return {"folder": str(root), "files": len(files), "images": len(index), **dict(sorted(counts.items()))}


# ---------------------------------------------------------------------------------------------
# Credits
# ---------------------------------------------------------------------------------------------

CREDITS_MARK = "<!-- written by `docsynth backgrounds credits`; rerun it to update -->"
CSV_FIELDS = ["id", "file", "title", "author", "author_url", "url", "licence", "licence_version",
              "licence_url", "attribution"]


def collect(provider: Any, name: str, out: str | Path, *, count: int, seed: int,
            options: dict[str, Any] | None = None, jpeg_quality: int = 92,
            on_start: Callable[[int, int], None] | None = None,
            progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Fill ``out`` with ``count`` backgrounds of a non-scraping provider (procedural, folder...),
    then give them records (licence, size, hashes) with :func:`normalize_folder`. Resumable:
    files already written are kept."""
    from docsynth.io import write_image

    out = Path(out)
    refs = provider.list_backgrounds({"seed": seed, "count": count, **(options or {})})[:count]
    if not refs:
        raise DocsynthError(f"backgrounds.provider: {name!r} listed no backgrounds; check backgrounds.options")
    targets = [out / "images" / f"{safe_id(ref.id)}.jpg" for ref in refs]
    done = sum(t.is_file() for t in targets)
    if on_start:
        on_start(len(refs), done)
    for ref, target in zip(refs, targets):
        if target.is_file():
            continue
        write_image(target, provider.load_background(ref), jpeg_quality)
        if progress:
            progress(1)
    licence = str((refs[0].meta or {}).get("licence") or getattr(provider, "licence", "") or "") or None
    summary = normalize_folder(out, min_width=1, min_height=1, quality=jpeg_quality, licence=licence, provider=name)
    return {"written": len(refs) - done, "resumed": done, "normalize": summary}


def attribution_line(rec: dict[str, Any]) -> str:
    """TASL: Title, Author (+ link), Source, Licence (name, version, link), as Markdown."""
    title = rec.get("title") or rec.get("file") or rec["id"]
    title = f"[{title}]({rec['url']})" if rec.get("url") else title
    author = rec.get("author") or "unknown author"
    if rec.get("author_url"):
        author = f"[{author}]({rec['author_url']})"
    code, version = rec.get("licence") or "unknown", rec.get("licence_version") or ""
    lic = licence_name(code, version)
    link = rec.get("licence_url") or licence_url(code, version)
    lic = f"[{lic}]({link})" if link else lic
    via = f" via {rec['provider']}" if rec.get("provider") else ""
    return f"\"{title}\" by {author}{via}, licensed under {lic}"


def write_credits(root: str | Path, force: bool = False) -> dict[str, Any]:
    """CREDITS.md and credits.csv for every kept image whose licence asks for attribution
    (everything except CC0 and public domain)."""
    root = Path(root)
    if not root.is_dir():
        raise DocsynthError(f"{root}: background folder not found")
    md_path, csv_path = root / "CREDITS.md", root / "credits.csv"
    if not force:
        if md_path.is_file() and CREDITS_MARK not in md_path.read_text(encoding="utf-8", errors="replace")[:500]:
            raise DocsynthError(f"{md_path}: exists and was not written by docsynth; pass --force to replace it")
        if csv_path.is_file() and not csv_path.read_text(encoding="utf-8", errors="replace").startswith(",".join(CSV_FIELDS)):
            raise DocsynthError(f"{csv_path}: exists and was not written by docsynth; pass --force to replace it")
    index = BackgroundIndex(root)
    kept = [r for r in index.records.values()
            if r.get("file") and Path(r["file"]).parts[0] not in SET_ASIDE and (root / r["file"]).is_file()]
    credit = [r for r in kept if (r.get("licence") or "unknown") not in NO_ATTRIBUTION]
    by_licence = Counter(licence_name(r.get("licence") or "unknown", r.get("licence_version") or "") for r in credit)
    lines = [CREDITS_MARK, "", "# Background image credits", "",
             f"{len(credit)} of the {len(kept)} background images are used under licences that ask for "
             "attribution. They may have been cropped, scaled, tiled or re-encoded as JPEG.", ""]
    lines += [f"- {attribution_line(r)}" for r in credit]
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in credit:
        writer.writerow({k: r.get(k) if r.get(k) is not None else "" for k in CSV_FIELDS})
    atomic_write_text(csv_path, buf.getvalue())
    return {"folder": str(root), "images": len(kept), "credited": len(credit),
            "by_licence": dict(sorted(by_licence.items())), "files": [str(md_path), str(csv_path)]}
