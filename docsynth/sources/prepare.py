"""`docsynth sources prepare`: build a document set from a seeded mix of sources.

For every entry of ``sources.mix`` (``name: count``, or ``all``) the source lists its
documents; a permutation drawn from ``SeedSequence([seed, crc32(entry)])`` orders them, and
the first ``count`` that load become the entry's pages (an unreadable or filtered document is
skipped, counted and replaced by the next one, so the result does not depend on the worker
count). Each page is cleaned by its source (``load_document``), given a mask and corners by
the entry's mask strategy (``sources.masks``, else the source's ``default_mask``, else
``fullpage``) and shrunk to ``max_size`` on its longest side (masks nearest-neighbour).

Output (``sources.out``), the folder ``generate --documents`` reads:
``images/<entry>/<id>.<fmt>``, ``masks/<entry>/<id>.png`` and ``documents.jsonl`` (id, source,
original path, licence, width, height, image and mask paths relative to the folder, corners,
the source's metadata, and ``words`` (text, line, poly in page pixels) from sources that know
their text). Every finished page is journalled in ``.prepare-journal.jsonl``, so an
interrupted run resumes; a folder made with another config is only replaced with ``force``.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.io import (
    IMAGE_SUFFIXES,
    atomic_write_text,
    claim_output,
    read_image,
    read_jsonl,
    read_mask,
    write_image,
    write_jsonl,
)
from docsynth.kinds import DocumentRef, Page
from docsynth.progress import Progress
from docsynth.schema import RunConfig
from docsynth.sources.store import entry_options, entry_source, entry_values, mask_for

JOURNAL = ".prepare-journal.jsonl"
OUR_ENTRIES = ("images", "masks", "documents.jsonl", "prepare.yaml", JOURNAL)


# ---------------------------------------------------------------------------------------------
# Resizing (also `docsynth resize`)
# ---------------------------------------------------------------------------------------------


def fit_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """The size with the same aspect whose longest side is at most ``max_size`` (never larger)."""
    if max_size < 1:
        raise DocsynthError(f"max size {max_size}: must be at least 1 pixel")
    scale = min(1.0, max_size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_page(page: Page, max_size: int) -> Page:
    """Shrink image (area), mask (nearest) and corners together."""
    h, w = page.image.shape[:2]
    nw, nh = fit_size(w, h, max_size)
    if (nw, nh) == (w, h):
        return page
    image = cv2.resize(page.image, (nw, nh), interpolation=cv2.INTER_AREA)
    mask = None if page.mask is None else cv2.resize(page.mask, (nw, nh), interpolation=cv2.INTER_NEAREST)
    corners = None if page.corners is None else np.asarray(page.corners, np.float64) * (nw / w, nh / h)
    return Page(image=image, mask=mask, corners=corners, words=scale_words(page.words, nw / w, nh / h))


def scale_words(words: list[dict[str, Any]] | None, sx: float, sy: float) -> list[dict[str, Any]] | None:
    """Word polygons (``Page.words``) of a page resized by (sx, sy), rounded to 1/100 px."""
    if words is None:
        return None
    return [{**w, "poly": np.round(np.asarray(w["poly"], np.float64) * (sx, sy), 2).tolist()} for w in words]


def _is_mask_file(rel: Path) -> bool:
    return "masks" in rel.parts[:-1] or rel.stem.endswith("_mask")


def resize_folder(src: str | Path, dst: str | Path, max_size: int, force: bool = False,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Copy every image under ``src`` to ``dst`` (same relative path) shrunk to ``max_size``.

    Files under a ``masks/`` folder or named ``*_mask.*`` are resized nearest-neighbour and
    stay binary. A ``documents.jsonl`` is rewritten with the new sizes and corners. Existing
    files in ``dst`` are kept (a rerun resumes) unless ``force``.
    """
    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise DocsynthError(f"{src}: folder not found")
    if dst.resolve() == src.resolve() or dst.resolve().is_relative_to(src.resolve()):
        raise DocsynthError(f"{dst}: must not be inside {src}; choose another destination")
    fit_size(1, 1, max_size)
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(src).parts))
    if progress:
        progress.start(len(files), 0)
    written = kept = failed = 0
    sizes: dict[str, tuple[int, int, int, int]] = {}  # relative path -> old w, h, new w, h
    problems = []
    for path in files:
        rel = path.relative_to(src)
        out = dst / rel
        mask = _is_mask_file(rel)
        try:
            image = read_mask(path) if mask else read_image(path)
        except DocsynthError as exc:
            failed += 1
            problems.append(str(exc))
            if progress:
                progress.advance()
            continue
        h, w = image.shape[:2]
        nw, nh = fit_size(w, h, max_size)
        sizes[rel.as_posix()] = (w, h, nw, nh)
        if out.exists() and not force:
            kept += 1
        else:
            if (nw, nh) != (w, h):
                image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_NEAREST if mask else cv2.INTER_AREA)
            write_image(out, image)
            written += 1
        if progress:
            progress.advance()
    manifest = src / "documents.jsonl"
    rows_written = False
    if manifest.is_file() and (force or not (dst / "documents.jsonl").exists()):
        rows = []
        for row in read_jsonl(manifest):
            size = sizes.get(str(row.get("image")))
            if size is None:
                continue  # its image was unreadable
            w, h, nw, nh = size
            row = {**row, "width": nw, "height": nh}
            if row.get("corners"):
                row["corners"] = np.round(np.asarray(row["corners"], float) * (nw / w, nh / h), 3).tolist()
            if row.get("words"):
                row["words"] = scale_words(row["words"], nw / w, nh / h)
            rows.append(row)
        write_jsonl(dst / "documents.jsonl", rows)
        rows_written = True
    return {"src": str(src), "dst": str(dst), "max_size": max_size, "images": len(files), "written": written,
            "kept": kept, "failed": failed, "problems": problems[:10], "documents_jsonl": rows_written,
            "seconds": round(time.perf_counter() - t0, 3)}


# ---------------------------------------------------------------------------------------------
# The mix
# ---------------------------------------------------------------------------------------------


def parse_mix(text: str) -> dict[str, int | str]:
    """``docvqa=700,funsd=all`` -> {"docvqa": 700, "funsd": "all"}."""
    mix: dict[str, int | str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise DocsynthError(f"--mix: {part!r} is not NAME=COUNT (e.g. --mix docvqa=700,funsd=all)")
        if value == "all":
            mix[name] = "all"
            continue
        try:
            mix[name] = int(value)
        except ValueError:
            raise DocsynthError(f"--mix: count of {name!r} is {value!r}; use a whole number or 'all'") from None
    if not mix:
        raise DocsynthError("--mix: empty; give NAME=COUNT pairs, e.g. --mix docvqa=700,funsd=199")
    return mix


def _wanted(entry: str, value: Any) -> int | None:
    """Count asked for an entry; None = all."""
    if value in ("all", None):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DocsynthError(f"sources.mix.{entry}: {value!r}; use a number of documents (0 or more) or 'all'")
    return value


def _safe_path(doc_id: str) -> str:
    """A document id as a relative path: keeps folders, replaces odd characters."""
    parts = [re.sub(r"[^\w.+-]+", "_", p).lstrip(".") or "_" for p in doc_id.replace("\\", "/").split("/") if p]
    return "/".join(parts) or "_"


def _file_stems(entry: str, refs: list[DocumentRef]) -> list[str]:
    """Output path (without suffix) of each document; ids that clean up to the same path
    (``a b`` and ``a_b``) get their checksum appended, so no page overwrites another."""
    stems = [f"{_safe_entry(entry)}/{_safe_path(r.id)}" for r in refs]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    return [f"{stem}-{zlib.crc32(f'{r.id}|{r.path}'.encode()):08x}" if counts[stem] > 1 else stem
            for stem, r in zip(stems, refs, strict=True)]


def _safe_entry(entry: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", entry).lstrip(".") or "_"


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def entry_order(seed: int, entry: str, n: int) -> np.ndarray:
    """The seeded order in which an entry's documents are tried."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(entry.encode("utf-8"))]))
    return rng.permutation(n)


def documents_fingerprint(cfg: RunConfig) -> dict[str, Any]:
    """What determines the output files."""
    sc = cfg.sources
    return {"seed": cfg.seed, "mix": dict(sc.mix), "max_size": sc.max_size,
            "image_format": sc.image_format, "jpeg_quality": sc.jpeg_quality,
            "masks": {e: mask_for(cfg, e) for e in sc.mix},
            "options": {e: {**entry_values(cfg, e), "source": entry_source(cfg, e)[0]} for e in sc.mix}}


def _prepare_output(out: Path, fp: dict[str, Any], cfg: RunConfig, force: bool) -> None:
    run_file = out / "prepare.yaml"
    claim_output(out, run_file, _json_safe(fp), OUR_ENTRIES, force, "prepared with this mix/config")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_file, yaml.safe_dump({"fingerprint": _json_safe(fp), "sources": _json_safe(cfg.sources.model_dump()),
                                                "seed": cfg.seed}, sort_keys=False))


def _read_journal(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    done: dict[tuple[str, int], dict[str, Any]] = {}
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            done[(rec["entry"], int(rec["candidate"]))] = rec
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by an interruption: that page is redone
    return done


# ---------------------------------------------------------------------------------------------
# One page (runs in a worker)
# ---------------------------------------------------------------------------------------------


def prepare_one(task: dict[str, Any]) -> dict[str, Any]:
    """Load, clean, mask, resize and write one candidate; report a row or why it was skipped."""
    ref: DocumentRef = task["ref"]
    entry, out = task["entry"], Path(task["out"])
    try:
        source = plugins.get("source", task["plugin"])
        page = source.load_document(ref)
        image = page.image
        if image is None or image.ndim not in (2, 3) or image.size == 0:
            raise DocsynthError(f"{ref.path or ref.id}: source returned no image")
        if image.ndim == 2:
            page.image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            page.image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        page = plugins.get("mask", task["mask"]).make_mask(page)
        h, w = page.image.shape[:2]
        if page.mask is None or page.mask.shape[:2] != (h, w):
            raise DocsynthError(f"mask strategy {task['mask']!r} returned no mask of the page's size")
        page = resize_page(page, task["max_size"])
    except DocsynthError as exc:
        return {"entry": entry, "candidate": task["candidate"], "ref": ref.id, "ok": False,
                "error": str(exc).splitlines()[0]}
    except Exception as exc:  # a plugin bug on one page must not end a long run
        return {"entry": entry, "candidate": task["candidate"], "ref": ref.id, "ok": False,
                "error": f"{ref.path or ref.id}: {type(exc).__name__}: {exc}"}
    stem = task["stem"]
    image_rel = f"images/{stem}.{task['image_format']}"
    mask_rel = f"masks/{stem}.png"
    write_image(out / image_rel, page.image, task["jpeg_quality"])
    write_image(out / mask_rel, page.mask)  # type: ignore[arg-type]  # every strategy makes a mask
    h, w = page.image.shape[:2]
    meta = _json_safe(ref.meta)
    row = {
        "id": f"{entry}/{ref.id}", "source": entry, "plugin": task["plugin"], "source_id": ref.id,
        "original": ref.path, "licence": meta.get("licence") or task["licence"],
        "width": w, "height": h, "image": image_rel, "mask": mask_rel,
        "corners": None if page.corners is None else np.round(np.asarray(page.corners, float), 3).tolist(),
        "mask_strategy": task["mask"], "meta": meta,
    }
    if page.words is not None:  # flat-page word boxes, for generate.labels: [text]
        row["words"] = scale_words(page.words, 1, 1)
    return {"entry": entry, "candidate": task["candidate"], "ref": ref.id, "ok": True, "row": row}


# ---------------------------------------------------------------------------------------------
# The whole set
# ---------------------------------------------------------------------------------------------


def prepare(cfg: RunConfig, force: bool = False,
            progress: Progress | None = None,
            warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build ``sources.out`` from ``sources.mix``; returns a summary dict."""
    t0 = time.perf_counter()
    sc = cfg.sources
    mix = sc.mix
    if not mix:
        raise DocsynthError("sources.mix: empty; name at least one source, e.g. --mix procedural=24")
    warnings: list[str] = []

    def say(msg: str) -> None:
        warnings.append(msg)
        if warn:
            warn(msg)

    # Names and counts first, then listings: a typo in the last name fails before any work.
    for entry, value in mix.items():
        _wanted(entry, value)
        entry_source(cfg, entry)
        plugins.get("mask", mask_for(cfg, entry))
    plan: dict[str, dict[str, Any]] = {}
    for entry, value in mix.items():
        want = _wanted(entry, value)
        plugin, source = entry_source(cfg, entry)
        mask = mask_for(cfg, entry)
        plugins.get("mask", mask)
        refs = source.list_documents(entry_options(cfg, entry, count=want))
        for problem in list(getattr(source, "problems", None) or [])[:5]:
            say(f"{entry}: skipped {problem}")
        if want is None:
            want = len(refs)
        elif len(refs) < want:
            say(f"{entry}: asked for {want} documents but only {len(refs)} are available; taking all {len(refs)}")
            want = len(refs)
        plan[entry] = {"plugin": plugin, "source": source, "mask": mask, "refs": refs, "want": want,
                       "stems": _file_stems(entry, refs),
                       "order": entry_order(cfg.seed, entry, len(refs)), "next": 0, "ok": [], "failed": []}

    out = Path(sc.out)
    _prepare_output(out, documents_fingerprint(cfg), cfg, force)
    journal_path = out / JOURNAL
    journal = _read_journal(journal_path)
    # Replay the journal in candidate order: the same pages are accepted as in the first run.
    for entry, p in plan.items():
        while len(p["ok"]) < p["want"] and (entry, p["next"]) in journal:
            rec = journal[(entry, p["next"])]
            if rec.get("ref") != p["refs"][int(p["order"][p["next"]])].id:
                break  # the source lists other documents now: redo from here
            if rec["ok"] and not (out / rec["row"]["image"]).is_file():
                break  # its files are gone: redo from here
            if rec["ok"]:  # metadata as the source describes the document now (licence fixes...)
                ref = p["refs"][int(p["order"][p["next"]])]
                meta = _json_safe(ref.meta)
                rec["row"].update(original=ref.path, meta=meta, licence=meta.get("licence") or p["source"].licence)
            (p["ok"] if rec["ok"] else p["failed"]).append(rec)
            p["next"] += 1
    total = sum(p["want"] for p in plan.values())
    resumed = sum(len(p["ok"]) for p in plan.values())
    if progress:
        progress.start(total, resumed)
    executor = plugins.get("executor", "local")
    written = 0
    with journal_path.open("a", encoding="utf-8") as jfh:
        if journal_path.stat().st_size and not journal_path.read_bytes().endswith(b"\n"):
            jfh.write("\n")  # end the line an interruption cut short
        while True:
            # A wave: as many untried candidates per entry as pages are still missing.
            tasks = []
            for entry, p in plan.items():
                missing = p["want"] - len(p["ok"])
                end = min(len(p["refs"]), p["next"] + missing)
                for k in range(p["next"], end):
                    tasks.append({"entry": entry, "candidate": k, "ref": p["refs"][int(p["order"][k])],
                                  "stem": p["stems"][int(p["order"][k])],
                                  "plugin": p["plugin"], "mask": p["mask"], "out": str(out),
                                  "max_size": sc.max_size, "image_format": sc.image_format,
                                  "jpeg_quality": sc.jpeg_quality, "licence": p["source"].licence})
                p["next"] = end
            if not tasks:
                break
            results: list[dict[str, Any]] = [{}] * len(tasks)  # every slot is set below
            for i, result in executor.map(prepare_one, tasks, workers=max(1, sc.workers)):
                results[i] = result
                jfh.write(json.dumps(result) + "\n")
                jfh.flush()
                if result["ok"] and progress:
                    progress.advance()
            for result in results:
                p = plan[result["entry"]]
                if result["ok"]:
                    p["ok"].append(result)
                    written += 1
                else:
                    p["failed"].append(result)
    rows: list[dict[str, Any]] = []
    per_source: dict[str, Any] = {}
    for entry, p in plan.items():
        ok = sorted(p["ok"], key=lambda r: r["candidate"])
        rows.extend(r["row"] for r in ok)
        per_source[entry] = {"source": p["plugin"], "mask": p["mask"], "requested": mix[entry],
                             "available": len(p["refs"]), "taken": len(ok), "skipped": len(p["failed"]),
                             "skipped_examples": [r["error"] for r in p["failed"][:3]]}
        if p["failed"]:
            say(f"{entry}: skipped {len(p['failed'])} unreadable or filtered documents "
                f"(e.g. {p['failed'][0]['error']})")
        if len(ok) < p["want"] and mix[entry] not in ("all", None):
            say(f"{entry}: only {len(ok)} of {p['want']} documents could be used")
    write_jsonl(out / "documents.jsonl", rows)
    return {"out": str(out), "documents": len(rows), "written": written, "resumed": resumed,
            "sources": per_source, "warnings": warnings, "seconds": round(time.perf_counter() - t0, 3)}
