"""Scraping backgrounds into a folder, provider-agnostic: a provider's ``search(query, options,
client)`` (the :class:`docsynth.kinds.ScrapingProvider` protocol) yields :class:`Candidate`
records page by page; this module filters them (licence, size, aspect), downloads them through
the polite client, normalises and records them. A rerun resumes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docsynth import options as options_mod
from docsynth.backgrounds.folder import REJECTED, BackgroundIndex, read_rejected, safe_id
from docsynth.backgrounds.licences import DEFAULT_LICENCES, licence_allowed, licence_url
from docsynth.backgrounds.normalize import Rejected, normalize_bytes
from docsynth.errors import DocsynthError
from docsynth.http import FetchError, PoliteClient
from docsynth.io import atomic_write_bytes, write_jsonl
from docsynth.progress import Progress
from docsynth.schema import BackgroundsSection

if TYPE_CHECKING:  # the HTTP and image code loads only when a command needs it
    from docsynth.backgrounds.normalize import Normalized
    from docsynth.http import PoliteClient


SIZE_REASONS = ("too-small", "aspect")  # depend on the run's settings, unlike bad content


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


def settings_from_config(section: BackgroundsSection) -> ScrapeSettings:
    return ScrapeSettings(licences=tuple(section.licences), min_width=section.min_width,
                          min_height=section.min_height, min_aspect=float(section.min_aspect),
                          max_aspect=float(section.max_aspect), max_side=section.max_side,
                          quality=section.jpeg_quality)


def client_from_config(section: BackgroundsSection) -> PoliteClient:
    return PoliteClient(contact=section.contact, interval=float(section.rate_limit),
                        retries=section.retries, backoff=float(section.backoff),
                        max_wait=float(section.max_wait), timeout=float(section.timeout))


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
           progress: Progress | None = None) -> dict[str, Any]:
    """Collect up to ``limit`` new-or-kept images per query into ``out``; resumable.

    Images already recorded for (provider, query) count towards the limit, ids seen before
    (recorded or rejected) are skipped without a download. ``options``: the provider's, with
    the core's ``licences`` (``backgrounds.licences``) under them.
    """
    built = options_mod.build(provider, {k: v for k, v in options.items() if k != "licences"},
                              f"backgrounds.options.{provider.name}", {"licences": options.get("licences")})

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = BackgroundIndex(out)
    rejected = read_rejected(out)
    by_sha = {r.get("sha256"): rid for rid, r in index.records.items() if r.get("sha256")}
    counts: Counter[str] = Counter()
    have = Counter(r.get("query") for r in index.records.values() if r.get("provider") == provider.name)
    if progress:
        progress.start(limit * len(queries), sum(min(have[q], limit) for q in queries))
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
            for cand in _search(provider, query, built, client):
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
                    progress.advance()
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


def _search(provider: Any, query: str, options: Mapping[str, Any], client: PoliteClient) -> Iterator[Candidate]:
    """The provider's results; an API that keeps failing ends the run with one line (what was
    collected so far is saved, and the next run resumes)."""
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
