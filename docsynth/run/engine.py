"""`docsynth run`: a whole experiment, stage by stage, into one run folder.

The stages, always in this order::

    sources -> backgrounds -> generate -> split -> train -> evaluate

``run.stages`` in the config names the ones an experiment uses. Each stage writes into its own
folder ``RUN/<stage>/`` and records ``RUN/<stage>/.stage.json``:

- ``key``: a content hash of what determines the stage's output, i.e. its config (minus keys
  that only change speed, such as worker counts, and minus the paths the runner sets) plus the
  ``output_id`` of every upstream stage it reads;
- ``status``: ``running`` while it works, ``complete`` when it finished, ``failed`` on error;
- ``output_id``: a new id each time the stage completes, so that everything downstream of a
  rerun stage reruns too;
- timings (one entry per attempt) and the stage's summary.

A stage is skipped when its record says complete, its key is unchanged and its output file is
there. A stage whose key changed starts from an empty folder. A stage that was interrupted
(same key, not complete) is called again on the same folder and resumes by itself: generate
skips finished shards, train continues from ``last.pt``.

Everything that can be checked without running anything (config types, stage names, plugin
names, input folders) is checked first and reported all at once, with file and line.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator


from docsynth import config as config_mod
from docsynth.schema import RunConfig
from docsynth.errors import DocsynthError
from docsynth.io import atomic_write_text

STAGE_ORDER = ("sources", "backgrounds", "generate", "split", "train", "evaluate")
RECORD = ".stage.json"
LOCK = ".lock"


# ---------------------------------------------------------------------------------------------
# What a stage is
# ---------------------------------------------------------------------------------------------


@dataclass
class StageContext:
    """What a stage function gets: its effective config and folders."""

    cfg: RunConfig  # the effective config, typed, paths already pointing into the run folder
    out: Path  # this stage's folder
    inputs: dict[str, Path]  # upstream stage name -> its folder (only stages it reads)
    resume: bool  # True when an interrupted attempt with the same key left files here
    progress: Callable[[int], None] | None = None
    on_start: Callable[[int, int], None] | None = None
    log: Callable[[str], None] = print  # warnings for the user (stderr under the CLI)


@dataclass(frozen=True)
class Stage:
    """One step of a run.

    ``reads`` lists input slots; each slot is a tuple of alternative upstream stages, the
    first one present in ``run.stages`` is used. A slot that no selected stage fills falls back
    to the stage's own config (e.g. generate renders procedural documents itself when there
    is no ``sources`` stage) unless it is in ``required``.
    """

    name: str
    sections: tuple[str, ...]  # top-level config keys whose values determine the output
    execute: Callable[[StageContext], dict[str, Any]]
    configure: Callable[[RunConfig, Path, dict[str, Path]], dict[str, Any]]  # -> {dotted: value}
    done_file: str  # present in the stage folder when the stage's own output is complete
    reads: tuple[tuple[str, ...], ...] = ()
    required: tuple[int, ...] = ()  # indexes of slots that must be filled
    ignore: frozenset[str] = frozenset()  # dotted keys that do not change the output
    check: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None  # -> [(dotted key, problem)]
    own_progress: bool = False  # the stage draws its own progress bar
    help: str = ""


def stage_inputs(stage: Stage, selected: list[str]) -> dict[str, str]:
    """slot alternatives -> the upstream stage that fills it (only filled slots)."""
    used = {}
    for slot in stage.reads:
        for name in slot:
            if name in selected:
                used[slot] = name
                break
    return used


def stage_key(stage: Stage, cfg: dict[str, Any], set_keys: set[str], upstream_ids: dict[str, str]) -> str:
    """Hash of the config that determines the stage's output plus its inputs' output ids."""
    part: dict[str, Any] = {}
    for section in stage.sections:
        value = copy.deepcopy(cfg.get(section))
        if isinstance(value, dict):
            for key in list(value):
                dotted = f"{section}.{key}"
                if dotted in stage.ignore or dotted in set_keys:
                    del value[key]
        part[section] = value
    payload = {"stage": stage.name, "config": part, "inputs": dict(sorted(upstream_ids.items()))}
    blob = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# ---------------------------------------------------------------------------------------------
# The stage records
# ---------------------------------------------------------------------------------------------


def read_record(stage_dir: Path) -> dict[str, Any] | None:
    path = stage_dir / RECORD
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_record(stage_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_text(stage_dir / RECORD, json.dumps(record, indent=2, default=str) + "\n")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_complete(stage: Stage, stage_dir: Path, record: dict[str, Any] | None) -> bool:
    return bool(record and record.get("status") == "complete" and record.get("output_id")
                and (stage_dir / stage.done_file).exists())


def _clear(stage_dir: Path) -> None:
    """Empty a stage folder the runner made (it holds a record) before a fresh start."""
    for child in stage_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One `docsynth run` per run folder at a time (a second one would mix stage files)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                raise DocsynthError(f"{run_dir}: another `docsynth run` (pid {pid}) is using this run folder; "
                                    "wait for it or stop it") from None
            lock.unlink(missing_ok=True)  # left by a run that was killed
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run(config_path: str | Path | None = None, *, start: str | None = None, until: str | None = None,
        force: list[str] | None = None, stages: dict[str, Stage] | None = None,
        log: Log = _stderr, progress: Callable[[str], Any] | None = None,
        report: bool | None = None) -> dict[str, Any]:
    """Run (or skip) the selected stages; returns a summary with one entry per stage.

    ``progress(label)`` returns a context manager giving an object with ``start``/``advance``
    (docsynth.progress.progress_bar); None runs without bars.
    """
    from docsynth.run.checks import check, load_config
    from docsynth.run.stages import STAGES

    t0 = time.perf_counter()
    stages = STAGES if stages is None else stages
    force = list(force or [])
    loaded = load_config(config_path)
    problems = check(loaded, stages, start=start, until=until, force=force)
    if problems:
        raise DocsynthError("\n".join(problems))
    cfg = loaded.cfg  # the mapping stays: stages' overrides and keys are dotted keys over it
    run = config_mod.typed(cfg).run
    run_dir = Path(run.dir).resolve()
    order = [s for s in STAGE_ORDER if s in run.stages]
    first = order.index(start) if start else 0
    last = order.index(until) if until else len(order) - 1
    active = order[first:last + 1]

    # Stages before --from are used as they are: they must have completed once.
    missing = []
    for name in order[:first]:
        if name in _needed_by(active, order, stages) and \
                not is_complete(stages[name], run_dir / name, read_record(run_dir / name)):
            missing.append(name)
    if missing:
        raise DocsynthError(f"{run_dir}: --from {start} needs the output of {', '.join(missing)}, which "
                            "never completed in this run folder; run without --from first")

    results: list[dict[str, Any]] = []
    with run_lock(run_dir):
        atomic_write_text(run_dir / "run.yaml", config_mod.dump(cfg))
        failure: BaseException | None = None
        for name in order:
            if name not in active:
                record = read_record(run_dir / name)
                results.append({"stage": name, "action": "not selected",
                                "status": (record or {}).get("status", "never run")})
                continue
            # A forced stage gets a new output id, so the stages after it rerun as well.
            try:
                results.append(_run_stage(stages, name, cfg, run_dir, order, name in force, log, progress))
            except BaseException as exc:  # record, write the report, then re-raise
                action = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                results.append({"stage": name, "action": action, "error": _one_line(exc)})
                failure = exc
                break
        summary = {"run": str(run_dir), "stages": results, "seconds": round(time.perf_counter() - t0, 3)}
        atomic_write_text(run_dir / "last_run.json", json.dumps(summary, indent=2, default=str) + "\n")
        want_report = run.report if report is None else report
        if want_report and not isinstance(failure, KeyboardInterrupt):
            try:
                from docsynth.report.page import write_report
                from docsynth.report.run_folder import RunFolder
                from docsynth.report.sections import evaluation_remark

                summary["report"] = str(write_report(run_dir))
                remark = evaluation_remark(RunFolder(run_dir)) if "evaluate" in active else ""
                if remark:
                    summary["remark"] = remark
            except Exception as exc:  # a report problem must not hide the run's outcome
                log(f"docsynth: warning: could not write the report: {_one_line(exc)}")
        if failure is not None:
            raise failure
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    return summary


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text and not isinstance(exc, DocsynthError) else \
        (text[0] if text else type(exc).__name__)


def _needed_by(active: list[str], order: list[str], stages: dict[str, Stage]) -> set[str]:
    need: set[str] = set()
    for name in active:
        need.update(stage_inputs(stages[name], order).values())
    return need - set(active)


def _run_stage(stages: dict[str, Stage], name: str, cfg: dict[str, Any], run_dir: Path, order: list[str],
               force: bool, log: Log, progress: Callable[[str], Any] | None) -> dict[str, Any]:
    stage = stages[name]
    stage_dir = run_dir / stage.name
    inputs = {up: run_dir / up for up in stage_inputs(stage, order).values()}
    upstream_ids = {}
    for up, folder in inputs.items():
        record = read_record(folder)
        if not is_complete(stages[up], folder, record):
            raise DocsynthError(f"{folder}: stage {up!r} has no complete output; rerun without --from/--until")
        upstream_ids[up] = record["output_id"]
    overrides = stage.configure(config_mod.typed(cfg), stage_dir, inputs)
    stage_cfg = config_mod.apply_overrides(copy.deepcopy(cfg), overrides)
    key = stage_key(stage, stage_cfg, set(overrides), upstream_ids)
    record = read_record(stage_dir)

    if not force and record and record.get("key") == key and is_complete(stage, stage_dir, record):
        log(f"[{stage.name}] up to date, skipped")
        return {"stage": stage.name, "action": "skipped", "key": key, "summary": record.get("summary")}

    # Resume only an attempt that stopped part-way; a complete stage whose output went missing
    # starts over (its own resume logic could take the leftovers for a finished job).
    resume = bool(record and record.get("key") == key and record.get("status") != "complete"
                  and not force and stage_dir.is_dir())
    if stage_dir.exists() and not resume:
        if record is None and (stage_dir / RECORD).is_file():
            raise DocsynthError(f"{stage_dir / RECORD}: corrupt (not a stage record docsynth can read); "
                                f"delete the folder {stage_dir} to redo the {stage.name} stage")
        if record is None and stage_dir.is_dir() and any(stage_dir.iterdir()):
            raise DocsynthError(f"{stage_dir}: not empty and not made by `docsynth run`; "
                                f"move it away or choose another run.dir")
        if stage_dir.is_dir():
            _clear(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    attempts = list(record.get("attempts", [])) if resume and record else []
    new_record = {"stage": stage.name, "key": key, "status": "running", "inputs": upstream_ids,
                  "config": {s: stage_cfg.get(s) for s in stage.sections}, "attempts": attempts,
                  "started": _now()}
    attempts.append({"started": new_record["started"], "seconds": None, "outcome": "running"})
    write_record(stage_dir, new_record)
    log(f"[{stage.name}] {'resuming' if resume else 'running'}")
    t0 = time.perf_counter()
    bar_cm = progress(stage.name) if progress and not stage.own_progress else nullcontext(None)
    try:
        with bar_cm as bar:
            ctx = StageContext(cfg=config_mod.typed(stage_cfg), out=stage_dir, inputs=inputs, resume=resume,
                               progress=bar.advance if bar else None, on_start=bar.start if bar else None,
                               log=lambda msg: log(f"[{stage.name}] {msg}"))
            summary = stage.execute(ctx) or {}
    except BaseException as exc:
        attempts[-1].update(seconds=round(time.perf_counter() - t0, 3),
                            outcome="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        new_record.update(status="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                          error=_one_line(exc), finished=_now())
        write_record(stage_dir, new_record)
        log(f"[{stage.name}] {new_record['status']}: {_one_line(exc)}")
        raise
    seconds = round(time.perf_counter() - t0, 3)
    attempts[-1].update(seconds=seconds, outcome="complete")
    if not (stage_dir / stage.done_file).exists():
        new_record.update(status="failed", error=f"finished without writing {stage.done_file}")
        write_record(stage_dir, new_record)
        raise DocsynthError(f"{stage_dir}: stage {stage.name!r} finished without writing {stage.done_file}")
    new_record.update(status="complete", finished=_now(), seconds=seconds,
                      total_seconds=round(sum(a["seconds"] or 0 for a in attempts), 3),
                      summary=summary, output_id=uuid.uuid4().hex[:16])
    write_record(stage_dir, new_record)
    log(f"[{stage.name}] done in {seconds:.1f} s")
    return {"stage": stage.name, "action": "resumed" if resume else "ran", "key": key,
            "seconds": seconds, "summary": summary}
