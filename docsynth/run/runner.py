"""`docsynth run`: walk the selected stages into one run folder (see :mod:`docsynth.run.engine`
for stages, records, keys and the lock), check everything first, write the report last."""

from __future__ import annotations

import copy
import json
import time
import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from docsynth import config as config_mod
from docsynth import workers
from docsynth.errors import DocsynthError
from docsynth.formats.runfolder import RECORD, STAGE_ORDER
from docsynth.io import atomic_write_text
from docsynth.progress import Bars, Progress
from docsynth.report.page import write_report
from docsynth.report.run_folder import RunFolder
from docsynth.report.sections import evaluation_remark
from docsynth.run.checks import check, load_config
from docsynth.run.engine import (
    Log,
    Stage,
    StageContext,
    _clear,
    _now,
    _stderr,
    is_complete,
    read_record,
    run_lock,
    stage_inputs,
    stage_key,
    write_record,
)
from docsynth.run.stages import STAGES


def run(config_path: str | Path | None = None, *, start: str | None = None, until: str | None = None,
        force: list[str] | None = None, stages: dict[str, Stage] | None = None,
        log: Log = _stderr, bars: Bars | None = None,
        report: bool | None = None) -> dict[str, Any]:
    """Run (or skip) the selected stages; returns a summary with one entry per stage.

    ``bars(label)`` gives each stage's Progress (docsynth.progress.progress_bar); None runs
    without bars.
    """
    t0 = time.perf_counter()
    stages = STAGES if stages is None else stages
    force = list(force or [])
    loaded = load_config(config_path)
    problems = check(loaded, stages, start=start, until=until, force=force)
    if problems:
        raise DocsynthError("\n".join(problems))
    cfg = loaded.cfg  # the mapping stays: stages' overrides and keys are dotted keys over it
    workers.cap_config(cfg)  # worker counts beyond the machine's CPUs: capped, with a note
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
                results.append(_run_stage(stages, name, cfg, run_dir, order, name in force, log, bars))
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
               force: bool, log: Log, bars: Bars | None) -> dict[str, Any]:
    stage = stages[name]
    stage_dir = run_dir / stage.name
    inputs = {up: run_dir / up for up in stage_inputs(stage, order).values()}
    upstream_ids = {}
    for up, folder in inputs.items():
        record = read_record(folder)
        if not is_complete(stages[up], folder, record):
            raise DocsynthError(f"{folder}: stage {up!r} has no complete output; rerun without --from/--until")
        upstream_ids[up] = record["output_id"] if record else ""  # complete: it has one
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
    new_record: dict[str, Any] = {"stage": stage.name, "key": key, "status": "running", "inputs": upstream_ids,
                  "config": {s: stage_cfg.get(s) for s in stage.sections}, "attempts": attempts,
                  "started": _now()}
    attempts.append({"started": new_record["started"], "seconds": None, "outcome": "running"})
    write_record(stage_dir, new_record)
    log(f"[{stage.name}] {'resuming' if resume else 'running'}")
    t0 = time.perf_counter()
    bar_cm = bars(stage.name) if bars and not stage.own_bar else nullcontext(Progress())
    try:
        with bar_cm as bar:
            ctx = StageContext(cfg=config_mod.typed(stage_cfg), out=stage_dir, inputs=inputs, resume=resume,
                               progress=bar,
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
