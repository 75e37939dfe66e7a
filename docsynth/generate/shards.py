"""`docsynth generate`: composite documents onto backgrounds, in resumable shards.

The samples come from the one sample stream (:mod:`docsynth.generate.stream`): sample ``i`` is
a pure function of (config, seed, i), so the output never depends on the number of workers or
the order shards finish in. Work is cut into shards of consecutive
indices; a shard is done when its ``shards/NNNNN.jsonl`` exists (written last, atomically),
so a rerun skips finished shards and redoes only the rest. A shard where some sample failed
(an unreadable document) is not done: its rows and failures go to ``shards/NNNNN.failed.json``,
the dataset is marked incomplete (``run.yaml``'s ``status``, ``failed.jsonl``) and a rerun
tries the shard again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.formats.tarshards import ShardWriter, shard_name, tar_row
from docsynth.generate.dewarp import check_labels, label_files
from docsynth.generate.pools import BackgroundPool, DocumentPool
from docsynth.generate.preflight import compositor_problem, labels_problem
from docsynth.generate.stream import SampleStream, _where
from docsynth.io import (
    atomic_write_bytes,
    atomic_write_text,
    claim_output,
    encode_image,
    encode_mask,
    read_jsonl,
    write_jsonl,
)
from docsynth.kinds import Sample
from docsynth.progress import Progress
from docsynth.schema import GenerateSection, RunConfig
from docsynth.workers import one_opencv_thread, one_opencv_thread_while_forking

# Keys of the generate section that do not change what is written.
NON_OUTPUT_KEYS = {"workers", "executor", "executor_options", "out", "cache_mb"}
OUR_ENTRIES = ("images", "masks", "shards", "manifest.jsonl", "run.yaml", "dewarp", "text", "failed.jsonl")
FAILED_FILE = "failed.jsonl"  # the samples that could not be made, while the dataset is incomplete


def dataset_fingerprint(cfg: RunConfig) -> dict[str, Any]:
    """The part of the config that determines the output files."""
    return _fingerprint(cfg.model_dump())


def _fingerprint(dumped: dict[str, Any]) -> dict[str, Any]:
    gen = {k: v for k, v in _without_empty_labels(dumped)["generate"].items() if k not in NON_OUTPUT_KEYS}
    return {"seed": dumped["seed"], "generate": gen}


def _without_empty_labels(dumped: dict[str, Any]) -> dict[str, Any]:
    """The dumped config without ``generate.labels`` when it is empty: a dataset without labels
    is the same (and its run.yaml byte-identical) as one made before labels existed."""
    if dumped["generate"].get("labels"):
        return dumped
    return {**dumped, "generate": {k: v for k, v in dumped["generate"].items() if k != "labels"}}


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
    """Everything a worker needs; built once, in the parent, and shipped to each worker."""

    gen: GenerateSection
    seed: int
    out: Path
    stream: SampleStream


_CTX: Context | None = None


def _init_worker(ctx: Context) -> None:
    global _CTX
    _CTX = ctx
    one_opencv_thread()  # a worker is one core (docsynth.workers; 13% less CPU per sample)


def sample_record(index: int, sample: Sample, info: dict[str, Any], gen: GenerateSection, seed: int) -> dict[str, Any]:
    sid = f"{index:07d}"
    h, w = sample.mask.shape[:2]
    row = {
        "id": sid,
        "image": f"images/{sid}.{gen.image_format}",
        "mask": f"masks/{sid}.png",
        **info,
        "seed": [seed, index],
        "width": w,
        "height": h,
        "corners": None if sample.corners is None else np.round(sample.corners, 3).tolist(),
        "flags": sorted(sample.flags),
        "preset": gen.compositor,
    }
    row.update(sample.extra)
    return row


def run_shard(task: tuple[int, int, int]) -> dict[str, Any]:
    """Generate one shard (in a worker) and mark it done."""
    ctx = _CTX
    assert ctx is not None, "worker not initialised"
    shard, start, end = task
    gen = ctx.gen
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []  # samples not made: index, document, reason
    skipped: dict[str, str] = {}  # input file -> why
    notes: set[str] = set()  # said once per run by the driver (e.g. pages without words)
    tar = ShardWriter() if gen.shard_format == "tar" else None
    labels: list[str] = list(gen.labels)
    documents = ctx.stream.documents
    for index in range(start, end):
        made = ctx.stream.render(index, skipped)
        if made is None:
            doc = documents.refs[(index // gen.per_document) % len(documents)]
            failed.append({"index": index, "document": _where(doc), "reason": skipped.get(_where(doc), "unreadable")})
            continue
        sample, info = made
        row = sample_record(index, sample, info, gen, ctx.seed)
        suffix = "." + gen.image_format
        image, mask = encode_image(sample.image, suffix, gen.jpeg_quality), encode_mask(sample.mask)
        members = label_files(sample, labels, gen.compositor, info, notes) if labels else {}
        if tar is not None:
            row = tar_row(row, shard, gen.image_format)
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
    done, partial = ctx.out / "shards" / f"{shard:05d}.jsonl", ctx.out / "shards" / f"{shard:05d}.failed.json"
    if failed:  # not done: a rerun makes this shard again (sample i is the same bytes every time)
        atomic_write_text(partial, json.dumps({"rows": rows, "failed": failed}) + "\n")
    else:
        write_jsonl(done, rows)
        partial.unlink(missing_ok=True)
    return {"shard": shard, "written": len(rows), "failed": len(failed), "size": end - start, "skipped": skipped,
            "notes": sorted(notes)}


def prepare_output(out: Path, cfg: RunConfig, force: bool) -> None:
    """Refuse to mix configs in one folder; with ``force``, clear what docsynth wrote there."""
    claim_output(out, out / "run.yaml", dataset_fingerprint(cfg), OUR_ENTRIES, force, "made with this config")
    out.mkdir(parents=True, exist_ok=True)
    # A worker killed mid-write (Ctrl-C, kill -9) leaves its temporary file behind.
    for sub in ("images", "masks", "shards", "dewarp", "text"):
        for tmp in (out / sub).glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
    _write_record(out, cfg, {"complete": False})  # complete only once every sample is made


def _write_record(out: Path, cfg: RunConfig, status: dict[str, Any]) -> None:
    """run.yaml: the fingerprint, whether the dataset is complete, the config. The fingerprint
    shares its mappings with the config, as run.yaml has always been written (YAML anchors)."""
    dumped = cfg.model_dump()
    atomic_write_text(out / "run.yaml", yaml.safe_dump(
        {"fingerprint": _fingerprint(dumped), "status": status, "config": _without_empty_labels(dumped)},
        sort_keys=False))


def plan_for(gen: GenerateSection, n_documents: int) -> Plan:
    total = gen.count if gen.count is not None else n_documents * gen.per_document
    return Plan(total=total, per_document=gen.per_document, shard_size=gen.shard_size)


def generate(cfg: RunConfig, force: bool = False, progress: Progress | None = None,
             note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run generation (the ``generate`` section; the whole config is recorded in run.yaml);
    returns a summary dict. ``progress`` counts samples (those of finished shards count as done
    at the start); ``note`` hears about each unreadable input file, once."""
    progress = progress or Progress()
    t0 = time.perf_counter()
    gen = cfg.generate
    check_labels(list(gen.labels))
    problem = compositor_problem(gen.compositor, gen.compositor_options) \
        or labels_problem(gen.compositor, gen.compositor_options, list(gen.labels))  # before any work
    if problem:
        raise DocsynthError(problem)
    executor = plugins.get("executor", gen.executor)
    executor_options = options_mod.build(executor, gen.executor_options, "generate.executor_options")
    stream = SampleStream.from_config(gen, cfg.seed)
    documents, backgrounds = stream.documents, stream.backgrounds
    out = Path(gen.out)
    prepare_output(out, cfg, force)
    plan = plan_for(gen, len(documents))
    shard_dir = out / "shards"
    redo_changed_inputs(shard_dir, documents, backgrounds, note)
    todo = [t for t in plan.shards if not (shard_dir / f"{t[0]:05d}.jsonl").is_file()]
    skipped = plan.total - sum(end - start for _, start, end in todo)
    progress.start(plan.total, skipped)
    ctx = Context(gen=gen, seed=cfg.seed, out=out, stream=stream)
    written = failed = 0
    unreadable: dict[str, str] = {}  # input file -> why it was skipped
    noted: set[str] = set()  # notes already given (once per run, whichever worker saw them)
    with one_opencv_thread_while_forking():  # with workers=1 the work runs in this process
        for _, result in executor.map(run_shard, todo, workers=gen.workers, initializer=_init_worker,
                                      initargs=(ctx,), options=executor_options):
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
            progress.advance(result["size"])
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


def _record_status(out: Path, cfg: RunConfig, samples: int, failures: list[dict[str, Any]]) -> None:
    """Say in the run record whether the dataset is complete, and list what is missing in
    ``failed.jsonl`` (removed once a rerun made every sample)."""
    _write_record(out, cfg, {"complete": not failures, "samples": samples, "failed": len(failures)})
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
        # (lists of other lengths make every shard stale through same_list, so zip may stop short)
        changed = {k: {n[0] for b, n in zip(before.get(k, []), now[k], strict=False) if b != n} for k in now}
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
