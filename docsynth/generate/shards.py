"""`docsynth generate`: composite documents onto backgrounds, in resumable shards.

Sample ``i`` takes document ``(i // per_document) % D`` and draws everything else from
``sample_rng(seed, i)``, so the output depends on the config and seed only, never on the
number of workers or the order shards finish in. Work is cut into shards of consecutive
indices; a shard is done when its ``shards/NNNNN.jsonl`` exists (written last, atomically),
so a rerun skips finished shards and redoes only the rest.
"""

from __future__ import annotations

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
from docsynth.generate.preflight import compositor_problem, labels_problem
from docsynth.generate.dewarp import check_labels, label_files
from docsynth.formats.tarshards import ShardWriter, shard_name, tar_row

# Keys of the generate section that do not change what is written.
NON_OUTPUT_KEYS = {"workers", "executor", "executor_options", "out"}
OUR_ENTRIES = ("images", "masks", "shards", "manifest.jsonl", "run.yaml", "dewarp", "text")


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of sample ``index``: a pure function of (seed, index)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index])))


def dataset_fingerprint(cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of the config that determines the output files."""
    gen = {k: v for k, v in _without_empty_labels(cfg)["generate"].items() if k not in NON_OUTPUT_KEYS}
    return {"seed": cfg["seed"], "generate": gen}


def _without_empty_labels(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` without ``generate.labels`` when it is empty: a dataset without labels is the
    same (and its run.yaml byte-identical) as one made before labels existed."""
    if cfg["generate"].get("labels"):
        return cfg
    return {**cfg, "generate": {k: v for k, v in cfg["generate"].items() if k != "labels"}}


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
    rows, failed, skipped, notes = [], 0, {}, set()
    tar = ShardWriter() if gen.get("shard_format", "files") == "tar" else None
    labels = gen.get("labels") or []
    for index in range(start, end):
        made = render_sample(ctx, index, skipped)
        if made is None:
            failed += 1
            continue
        sample, info = made
        row = sample_record(index, sample, info, ctx.cfg)
        suffix = "." + gen["image_format"]
        image, mask = encode_image(sample.image, suffix, gen["jpeg_quality"]), encode_image(sample.mask, ".png")
        members = label_files(sample, labels, gen["compositor"], info, notes) if labels else {}
        if tar is not None:
            row = tar_row(row, shard, gen["image_format"])
            row.update({kind: f"{row['id']}.{name}" for kind, (name, _) in members.items()})
            tar.add(row, image, mask, {name: data for name, data in members.values()})
        else:
            atomic_write_bytes(ctx.out / row["image"], image)
            atomic_write_bytes(ctx.out / row["mask"], mask)
            for kind, (name, data) in members.items():
                row[kind] = f"{kind}/{row['id']}.{name.split('.', 1)[1]}"
                atomic_write_bytes(ctx.out / row[kind], data)
        rows.append(row)
    if tar is not None:
        tar.write(ctx.out / shard_name(shard))
    write_jsonl(ctx.out / "shards" / f"{shard:05d}.jsonl", rows)
    return {"shard": shard, "written": len(rows), "failed": failed, "size": end - start, "skipped": skipped,
            "notes": sorted(notes)}


def prepare_output(out: Path, cfg: dict[str, Any], force: bool) -> None:
    """Refuse to mix configs in one folder; with ``force``, clear what docsynth wrote there."""
    claim_output(out, out / "run.yaml", dataset_fingerprint(cfg), OUR_ENTRIES, force, "made with this config")
    out.mkdir(parents=True, exist_ok=True)
    # A worker killed mid-write (Ctrl-C, kill -9) leaves its temporary file behind.
    for sub in ("images", "masks", "shards", "dewarp", "text"):
        for tmp in (out / sub).glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
    atomic_write_text(out / "run.yaml", yaml.safe_dump(
        {"fingerprint": dataset_fingerprint(cfg), "config": _without_empty_labels(cfg)}, sort_keys=False))


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
    check_labels(gen.get("labels") or [])
    problem = compositor_problem(gen["compositor"], gen["compositor_options"]) \
        or labels_problem(gen["compositor"], gen["compositor_options"], gen.get("labels") or [])  # before any work
    if problem:
        raise DocsynthError(problem)
    executor = plugins.get("executor", gen["executor"])
    documents = DocumentPool.from_config(gen, cfg["seed"])
    backgrounds = BackgroundPool.from_config(gen, cfg["seed"])
    out = Path(gen["out"])
    prepare_output(out, cfg, force)
    plan = plan_for(cfg, len(documents))
    shard_dir = out / "shards"
    todo = [t for t in plan.shards if not (shard_dir / f"{t[0]:05d}.jsonl").is_file()]
    skipped = plan.total - sum(end - start for _, start, end in todo)
    if on_start:
        on_start(plan.total, skipped)
    ctx = Context(cfg=cfg, out=out, documents=documents, backgrounds=backgrounds)
    written = failed = 0
    unreadable: dict[str, str] = {}  # input file -> why it was skipped
    noted: set[str] = set()  # notes already given (once per run, whichever worker saw them)
    for _, result in executor.map(run_shard, todo, workers=gen["workers"], initializer=_init_worker,
                                  initargs=(ctx,), options=gen["executor_options"]):
        written += result["written"]
        failed += result["failed"]
        for file, why in result.get("skipped", {}).items():
            if file not in unreadable and note:
                note(f"skipped {why}")
            unreadable.setdefault(file, why)
        for line in result.get("notes", ()):
            if line not in noted and note:
                note(line)
            noted.add(line)
        if progress:
            progress(result["size"])
    rows: list[dict[str, Any]] = []
    for shard, _, _ in plan.shards:
        shard_file = shard_dir / f"{shard:05d}.jsonl"
        if not shard_file.is_file():  # e.g. cluster workers wrote to their own disks
            raise DocsynthError(f"{shard_file}: missing after all shards ran; put --out on a "
                                "filesystem the driver and every worker share, then rerun")
        rows.extend(read_jsonl(shard_file))
    write_jsonl(out / "manifest.jsonl", rows)
    if plan.total and not rows:
        raise DocsynthError(f"{out}: no sample could be made: none of the {len(documents)} documents could be "
                            "read; check the document images (generate.documents / --documents)")
    seconds = time.perf_counter() - t0
    return {
        "out": str(out),
        "samples": len(rows),
        "written": written,
        "resumed": skipped,
        "failed": failed,
        "skipped": [{"file": f, "reason": why} for f, why in sorted(unreadable.items())],
        "documents": len(documents),
        "backgrounds": len(backgrounds),
        "seconds": round(seconds, 3),
        "samples_per_second": round(written / seconds, 2) if seconds > 0 else None,
    }
