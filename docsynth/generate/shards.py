"""`docsynth generate`: composite documents onto backgrounds, in resumable shards.

Sample ``i`` takes document ``(i // per_document) % D`` and draws everything else from
``sample_rng(seed, i)``, so the output depends on the config and seed only, never on the
number of workers or the order shards finish in. Work is cut into shards of consecutive
indices; a shard is done when its ``shards/NNNNN.jsonl`` exists (written last, atomically),
so a rerun skips finished shards and redoes only the rest. A shard where some sample failed
(an unreadable document) is not done: its rows and failures go to ``shards/NNNNN.failed.json``,
the dataset is marked incomplete (``run.yaml``'s ``status``, ``failed.jsonl``) and a rerun
tries the shard again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.generate.pools import BackgroundPool, DocumentPool
from docsynth.io import atomic_write_text, claim_output, encode_image, atomic_write_bytes, read_jsonl, write_jsonl
from docsynth.kinds import Sample
from docsynth.generate.preflight import compositor_problem
from docsynth.formats.tarshards import ShardWriter, shard_name, tar_row

# Keys of the generate section that do not change what is written.
NON_OUTPUT_KEYS = {"workers", "executor", "executor_options", "out"}
OUR_ENTRIES = ("images", "masks", "shards", "manifest.jsonl", "run.yaml", "failed.jsonl")
FAILED_FILE = "failed.jsonl"  # the samples that could not be made, while the dataset is incomplete


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of sample ``index``: a pure function of (seed, index)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index])))


def dataset_fingerprint(cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of the config that determines the output files."""
    gen = {k: v for k, v in cfg["generate"].items() if k not in NON_OUTPUT_KEYS}
    return {"seed": cfg["seed"], "generate": gen}


@dataclass
class Plan:
    total: int
    per_document: int
    shard_size: int

    @property
    def shards(self) -> list[tuple[int, int, int]]:
        """(shard index, first sample, end sample)"""
        return [(k, s, min(s + self.shard_size, self.total))
                for k, s in enumerate(range(0, self.total, self.shard_size))]


@dataclass
class Context:
    """Everything a worker needs; built once per process."""

    cfg: dict[str, Any]
    out: Path
    documents: DocumentPool
    backgrounds: BackgroundPool

    @property
    def gen(self) -> dict[str, Any]:
        return self.cfg["generate"]


_CTX: Context | None = None


def _init_worker(ctx: Context) -> None:
    global _CTX
    _CTX = ctx


def render_sample(ctx: Context, index: int,
                  skipped: dict[str, str] | None = None) -> tuple[Sample, dict[str, Any]] | None:
    """Make sample ``index`` in memory; None when its document cannot be read. Each unreadable
    document or background goes into ``skipped`` (its file -> why)."""
    gen, seed = ctx.gen, ctx.cfg["seed"]
    skipped = {} if skipped is None else skipped
    doc_index = (index // gen["per_document"]) % len(ctx.documents)
    try:
        page = ctx.documents.load(doc_index)
    except DocsynthError as exc:
        skipped[_where(ctx.documents.refs[doc_index])] = str(exc)
        return None
    rng = sample_rng(seed, index)
    bg_index = int(rng.integers(len(ctx.backgrounds)))
    background = None
    # An unreadable background is replaced by the next one: deterministic, since decoding
    # the same file fails the same way in every worker.
    for attempt in range(len(ctx.backgrounds)):
        j = (bg_index + attempt) % len(ctx.backgrounds)
        try:
            background = ctx.backgrounds.load(j)
            bg_index = j
            break
        except DocsynthError as exc:
            skipped[_where(ctx.backgrounds.refs[j])] = str(exc)
            continue
    if background is None:
        raise DocsynthError("no readable background images; check generate.backgrounds / --backgrounds")
    compositor = plugins.get("compositor", gen["compositor"])
    try:
        sample = compositor.compose(page, background, rng, dict(gen["compositor_options"]))
    except DocsynthError:
        raise
    except Exception as exc:  # a plugin's bug: one line naming it, not its traceback
        raise DocsynthError(f"compositor {gen['compositor']!r} ({plugins.host().describe('compositor', gen['compositor'])}) "
                            f"failed on sample {index}: {type(exc).__name__}: {exc}") from None
    doc_ref, bg_ref = ctx.documents.refs[doc_index], ctx.backgrounds.refs[bg_index]
    info = {
        "document": {"source": doc_ref.source, "id": doc_ref.id},
        "background": bg_ref.id,
    }
    return sample, info


def _where(ref: Any) -> str:
    """A document or background as the user knows it: its file, else its id."""
    return str(ref.path) if getattr(ref, "path", None) else f"{getattr(ref, 'source', None) or ref.provider}:{ref.id}"


def sample_record(index: int, sample: Sample, info: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    gen = cfg["generate"]
    sid = f"{index:07d}"
    h, w = sample.mask.shape[:2]
    row = {
        "id": sid,
        "image": f"images/{sid}.{gen['image_format']}",
        "mask": f"masks/{sid}.png",
        **info,
        "seed": [cfg["seed"], index],
        "width": w,
        "height": h,
        "corners": None if sample.corners is None else np.round(sample.corners, 3).tolist(),
        "flags": sorted(sample.flags),
        "preset": gen["compositor"],
    }
    row.update(sample.extra)
    return row


def run_shard(task: tuple[int, int, int]) -> dict[str, Any]:
    """Generate one shard (in a worker) and mark it done."""
    ctx = _CTX
    assert ctx is not None, "worker not initialised"
    shard, start, end = task
    gen = ctx.gen
    rows, failed, skipped = [], [], {}
    tar = ShardWriter() if gen.get("shard_format", "files") == "tar" else None
    for index in range(start, end):
        made = render_sample(ctx, index, skipped)
        if made is None:
            doc = ctx.documents.refs[(index // gen["per_document"]) % len(ctx.documents)]
            failed.append({"index": index, "document": _where(doc), "reason": skipped.get(_where(doc), "unreadable")})
            continue
        sample, info = made
        row = sample_record(index, sample, info, ctx.cfg)
        suffix = "." + gen["image_format"]
        image, mask = encode_image(sample.image, suffix, gen["jpeg_quality"]), encode_image(sample.mask, ".png")
        if tar is not None:
            row = tar_row(row, shard, gen["image_format"])
            tar.add(row, image, mask)
        else:
            atomic_write_bytes(ctx.out / row["image"], image)
            atomic_write_bytes(ctx.out / row["mask"], mask)
        rows.append(row)
    if tar is not None:
        tar.write(ctx.out / shard_name(shard))
    done, partial = ctx.out / "shards" / f"{shard:05d}.jsonl", ctx.out / "shards" / f"{shard:05d}.failed.json"
    if failed:  # not done: a rerun makes this shard again (sample i is the same bytes every time)
        atomic_write_text(partial, json.dumps({"rows": rows, "failed": failed}) + "\n")
    else:
        write_jsonl(done, rows)
        partial.unlink(missing_ok=True)
    return {"shard": shard, "written": len(rows), "failed": len(failed), "size": end - start, "skipped": skipped}


def prepare_output(out: Path, cfg: dict[str, Any], force: bool) -> None:
    """Refuse to mix configs in one folder; with ``force``, clear what docsynth wrote there."""
    claim_output(out, out / "run.yaml", dataset_fingerprint(cfg), OUR_ENTRIES, force, "made with this config")
    out.mkdir(parents=True, exist_ok=True)
    # A worker killed mid-write (Ctrl-C, kill -9) leaves its temporary file behind.
    for sub in ("images", "masks", "shards"):
        for tmp in (out / sub).glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
    atomic_write_text(out / "run.yaml", yaml.safe_dump(  # complete only once every sample is made
        {"fingerprint": dataset_fingerprint(cfg), "status": {"complete": False}, "config": cfg}, sort_keys=False))


def plan_for(cfg: dict[str, Any], n_documents: int) -> Plan:
    gen = cfg["generate"]
    if gen["per_document"] < 1:
        raise DocsynthError("generate.per_document must be at least 1")
    if gen["shard_size"] < 1:
        raise DocsynthError("generate.shard_size must be at least 1")
    total = gen["count"] if gen["count"] is not None else n_documents * gen["per_document"]
    if total < 0:
        raise DocsynthError("generate.count must not be negative")
    return Plan(total=total, per_document=gen["per_document"], shard_size=gen["shard_size"])


def generate(cfg: dict[str, Any], force: bool = False,
             progress: Callable[[int], None] | None = None,
             on_start: Callable[[int, int], None] | None = None,
             note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run generation for an effective config; returns a summary dict. ``note`` hears about
    each unreadable input file, once."""
    t0 = time.perf_counter()
    gen = cfg["generate"]
    if gen["workers"] < 1:
        raise DocsynthError("generate.workers must be at least 1")
    problem = compositor_problem(gen["compositor"], gen["compositor_options"])  # before any work
    if problem:
        raise DocsynthError(problem)
    executor = plugins.get("executor", gen["executor"])
    documents = DocumentPool.from_config(gen, cfg["seed"])
    backgrounds = BackgroundPool.from_config(gen, cfg["seed"])
    out = Path(gen["out"])
    prepare_output(out, cfg, force)
    plan = plan_for(cfg, len(documents))
    shard_dir = out / "shards"
    redo_changed_inputs(shard_dir, documents, backgrounds, note)
    todo = [t for t in plan.shards if not (shard_dir / f"{t[0]:05d}.jsonl").is_file()]
    skipped = plan.total - sum(end - start for _, start, end in todo)
    if on_start:
        on_start(plan.total, skipped)
    ctx = Context(cfg=cfg, out=out, documents=documents, backgrounds=backgrounds)
    written = failed = 0
    unreadable: dict[str, str] = {}  # input file -> why it was skipped
    for _, result in executor.map(run_shard, todo, workers=gen["workers"], initializer=_init_worker,
                                  initargs=(ctx,), options=gen["executor_options"]):
        written += result["written"]
        failed += result["failed"]
        for file, why in result.get("skipped", {}).items():
            if file not in unreadable and note:
                note(f"skipped {why}")
            unreadable.setdefault(file, why)
        if progress:
            progress(result["size"])
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []  # samples not made, in this run or (never retried) before
    for shard, _, _ in plan.shards:
        shard_file = shard_dir / f"{shard:05d}.jsonl"
        partial = shard_dir / f"{shard:05d}.failed.json"
        if shard_file.is_file():
            rows.extend(read_jsonl(shard_file))
        elif partial.is_file():
            record = json.loads(partial.read_text(encoding="utf-8"))
            rows.extend(record["rows"])
            failures.extend(record["failed"])
        else:  # e.g. cluster workers wrote to their own disks
            raise DocsynthError(f"{shard_file}: missing after all shards ran; put --out on a "
                                "filesystem the driver and every worker share, then rerun")
    write_jsonl(out / "manifest.jsonl", rows)
    _record_status(out, cfg, len(rows), failures)
    if plan.total and not rows:
        raise DocsynthError(f"{out}: no sample could be made: none of the {len(documents)} documents could be "
                            "read; check the document images (generate.documents / --documents)", exit_code=1)
    seconds = time.perf_counter() - t0
    return {
        "out": str(out),
        "complete": not failures,
        "samples": len(rows),
        "written": written,
        "resumed": skipped,
        "failed": len(failures),
        "failed_samples": failures,
        "skipped": [{"file": f, "reason": why} for f, why in sorted(unreadable.items())],
        "documents": len(documents),
        "backgrounds": len(backgrounds),
        "seconds": round(seconds, 3),
        "samples_per_second": round(written / seconds, 2) if seconds > 0 else None,
    }


def _record_status(out: Path, cfg: dict[str, Any], samples: int, failures: list[dict[str, Any]]) -> None:
    """Say in the run record whether the dataset is complete, and list what is missing in
    ``failed.jsonl`` (removed once a rerun made every sample)."""
    status = {"complete": not failures, "samples": samples, "failed": len(failures)}
    atomic_write_text(out / "run.yaml", yaml.safe_dump(
        {"fingerprint": dataset_fingerprint(cfg), "status": status, "config": cfg}, sort_keys=False))
    if failures:
        write_jsonl(out / FAILED_FILE, failures)
    else:
        (out / FAILED_FILE).unlink(missing_ok=True)


def failure_line(summary: dict[str, Any]) -> str:
    """One line for an incomplete dataset: how many samples failed, the first reason, what to do."""
    first = summary["failed_samples"][0]
    return (f"{summary['out']}: incomplete, {summary['failed']} of {summary['failed'] + summary['samples']} samples "
            f"failed (first: sample {first['index']}, {first['reason']}); listed in "
            f"{Path(summary['out']) / FAILED_FILE}; fix or replace those files, then rerun the same command "
            "to make the failed samples")


INPUTS_FILE = "inputs.json"  # in shards/: size and mtime of every input file the shards were made from


def _stamps(refs: list[Any]) -> list[list[Any]]:
    """[id, path, size, mtime_ns] of each reference read from a file ([id, None, ...] otherwise)."""
    out = []
    for ref in refs:
        path = getattr(ref, "path", None)
        try:
            st = Path(path).stat() if path else None
        except OSError:
            st = None
        out.append([ref.id, path, st and st.st_size, st and st.st_mtime_ns])
    return out


def redo_changed_inputs(shard_dir: Path, documents: DocumentPool, backgrounds: BackgroundPool,
                        note: Callable[[str], None] | None = None) -> None:
    """A rerun must not keep samples of an input that changed since: a page or background
    replaced at the same path (other size or mtime) marks the finished shards that used it as
    not done, and a different list of inputs (sample i would take another page) all of them."""
    now = {"documents": _stamps(documents.refs), "backgrounds": _stamps(backgrounds.refs)}
    record = shard_dir / INPUTS_FILE
    try:
        before = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = None
    done = sorted(shard_dir.glob("[0-9]*.jsonl"))
    if before is not None and before != now and done:
        same_list = all([r[:2] for r in before.get(k, [])] == [r[:2] for r in now[k]] for k in now)
        changed = {k: {n[0] for b, n in zip(before.get(k, []), now[k]) if b != n} for k in now}
        stale = []
        for shard in done:
            rows = read_jsonl(shard)
            if not same_list or any(r["document"]["id"] in changed["documents"]
                                    or r["background"] in changed["backgrounds"] for r in rows):
                stale.append(shard)
        for shard in stale:
            shard.unlink()
        if stale and note:
            what = "the list of inputs changed" if not same_list else (
                "changed since: " + ", ".join(sorted(str(r[1]) for k in now for r in now[k] if r[0] in changed[k]))[:300])
            note(f"{len(stale)} finished shards are made again: {what}")
    shard_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record, json.dumps(now) + "\n")
