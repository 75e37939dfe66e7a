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
import importlib.util
import json
import os
import shutil
import sys
import time
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator


from docsynth import config as config_mod
from docsynth.config import lookup
from docsynth import outputs, plugins
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

    cfg: dict[str, Any]  # the effective config, paths already pointing into the run folder
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
    configure: Callable[[dict[str, Any], Path, dict[str, Path]], dict[str, Any]]  # -> {dotted: value}
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
# Config problems, all at once
# ---------------------------------------------------------------------------------------------


@dataclass
class LoadedConfig:
    cfg: dict[str, Any]
    path: Path | None  # the YAML file it came from (None: defaults only)
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def where(self, dotted: str) -> str:
        """'file:line' of a key (or of its closest parent present in the file)."""
        if self.path is None:
            return "config"
        parts = tuple(dotted.split("."))
        while parts:
            if parts in self.lines:
                return f"{self.path}:{self.lines[parts]}"
            parts = parts[:-1]
        return str(self.path)


def load_config(path: str | Path | None) -> LoadedConfig:
    """Defaults <- the YAML file, keeping going past type problems so that every problem in the
    file (types, unknown keys, and the run checks after) is reported in one go."""
    if path is None:
        candidate = Path.cwd() / config_mod.DEFAULT_FILE
        path = candidate if candidate.is_file() else None
    if path is None:
        return LoadedConfig(config_mod.defaults(), None)
    path = Path(path)
    data, lines = config_mod.parse_file(path)
    problems = config_mod.validate(data, str(path), lines)
    cfg = config_mod.merge(config_mod.defaults(), _valid_part(data, str(path)))
    return LoadedConfig(cfg, path, lines, problems)


def _valid_part(data: Any, origin: str) -> dict[str, Any]:
    """The keys of ``data`` that pass validation (so later checks can still run on the rest)."""
    if not isinstance(data, dict):
        return {}
    keep: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(config_mod.SCHEMA.get(key), dict):
            section = {k: v for k, v in value.items() if not config_mod.validate({key: {k: v}}, origin)}
            keep[key] = section
        elif not config_mod.validate({key: value}, origin):
            keep[key] = value
    return keep


PLUGIN_KEYS = {  # dotted key -> plugin kind whose names it takes
    "backgrounds.provider": "background",
    "generate.compositor": "compositor",
    "generate.executor": "executor",
    "generate.mask": "mask",
    "train.backbone": "backbone",
    "evaluate.postprocessor": "postprocessor",
}


def check(loaded: LoadedConfig, stages: dict[str, Stage], *, start: str | None = None,
          until: str | None = None, force: list[str] | None = None) -> list[str]:
    """Every problem that can be found before a stage starts, one line each."""
    problems = list(loaded.problems)
    cfg = loaded.cfg

    def add(dotted: str, message: str) -> None:
        problems.append(f"{loaded.where(dotted)}: {message}")

    selected = cfg["run"]["stages"]
    known = ", ".join(STAGE_ORDER)
    names = [s for s in selected if isinstance(s, str)]
    for name in selected:
        if name not in stages:
            add("run.stages", f"'run.stages' names unknown stage {name!r}; known: {known}")
    if len(set(names)) != len(names):
        add("run.stages", "'run.stages' lists a stage twice")
    order = [s for s in STAGE_ORDER if s in names]
    if [s for s in names if s in stages] != order:
        add("run.stages", f"'run.stages' must follow the pipeline order: {known}")
    if not names:
        add("run.stages", "'run.stages' is empty; name at least one stage")
    for flag, value in (("--from", start), ("--until", until), *(("--force", f) for f in force or [])):
        if value is not None and value not in order:
            problems.append(f"{flag} {value}: not a stage of this run (run.stages: {', '.join(order) or 'none'})")
    if start in order and until in order and order.index(start) > order.index(until):
        problems.append(f"--from {start} comes after --until {until}; nothing to run")
    active = order[order.index(start) if start in order else 0:order.index(until) + 1 if until in order else None]
    for name in force or []:
        if name in order and name not in active:
            problems.append(f"--force {name}: outside the stages --from/--until select ({', '.join(active)})")

    torch_stages = [name for name in order if name in TORCH_STAGES]
    if torch_stages and not _importable("torch"):  # say so now, not after the first stages ran
        which = ("stage " if len(torch_stages) == 1 else "stages ") + " and ".join(map(repr, torch_stages))
        add("run.stages", f"{which} {'needs' if len(torch_stages) == 1 else 'need'} PyTorch, which is not installed: "
            "pip install torch==2.14.1 torchvision==0.29.1 (see README), or remove "
            f"{'it' if len(torch_stages) == 1 else 'them'} from run.stages")
    try:  # before any stage: a run folder under a file or in a read-only place
        outputs.check_folder(cfg["run"]["dir"], "run.dir")
    except DocsynthError as exc:
        add("run.dir", str(exc))
    host_names = {kind: set(plugins.names(kind)) for kind in set(PLUGIN_KEYS.values()) | {"source"}}
    for name in order:
        stage = stages[name]
        filled = stage_inputs(stage, order)
        for index in stage.required:
            slot = stage.reads[index]
            if slot not in filled:
                add("run.stages", f"stage {name!r} reads the output of {' or '.join(slot)}; "
                    f"add {'it' if len(slot) == 1 else 'one of them'} to run.stages")
        for dotted, message in (stage.check(cfg) if stage.check else []):
            add(dotted, message)
    for dotted, kind in PLUGIN_KEYS.items():
        section = dotted.split(".")[0]
        if not _section_used(section, order):
            continue
        value = lookup(cfg, dotted)
        if isinstance(value, str) and value not in host_names[kind]:
            add(dotted, f"'{dotted}' is {value!r}: no {kind} plugin by that name "
                f"(known: {', '.join(sorted(host_names[kind])) or 'none'})")
    if "generate" in order:
        if "sources" not in order and lookup(cfg, "generate.documents") is None \
                and lookup(cfg, "generate.source") not in host_names["source"]:
            add("generate.source", f"'generate.source' is {lookup(cfg, 'generate.source')!r}: no source plugin "
                f"by that name (known: {', '.join(sorted(host_names['source']))})")
        if "backgrounds" not in order and lookup(cfg, "generate.backgrounds") is None \
                and lookup(cfg, "generate.background_provider") not in host_names["background"]:
            add("generate.background_provider", f"'generate.background_provider' is "
                f"{lookup(cfg, 'generate.background_provider')!r}: no background plugin by that name")
    return sorted(problems, key=_line_order)


TORCH_STAGES = ("train", "evaluate")  # train makes a .pt, evaluate scores it


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def _line_order(problem: str) -> tuple[int, int]:
    """Problems of the file in line order, then those of the command line."""
    head = problem.split(": ", 1)[0]
    line = head.rsplit(":", 1)[-1]
    return (0, int(line)) if line.isdigit() else (1, 0)


def _section_used(section: str, order: list[str]) -> bool:
    return section in order or section not in STAGE_ORDER


def _at_least(cfg: dict[str, Any], keys: dict[str, int]) -> list[tuple[str, str]]:
    out = []
    for dotted, low in keys.items():
        value = lookup(cfg, dotted)
        if isinstance(value, int) and not isinstance(value, bool) and value < low:
            out.append((dotted, f"'{dotted}' is {value}, must be at least {low}"))
    return out


def _existing_folder(cfg: dict[str, Any], dotted: str, what: str) -> list[tuple[str, str]]:
    value = lookup(cfg, dotted)
    if isinstance(value, str) and value and not Path(value).is_dir():
        return [(dotted, f"'{dotted}' is {value!r}: {what} folder not found")]
    return []


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
    t0 = time.perf_counter()
    stages = STAGES if stages is None else stages
    force = list(force or [])
    loaded = load_config(config_path)
    problems = check(loaded, stages, start=start, until=until, force=force)
    if problems:
        raise DocsynthError("\n".join(problems))
    cfg = loaded.cfg
    run_dir = Path(cfg["run"]["dir"]).resolve()
    order = [s for s in STAGE_ORDER if s in cfg["run"]["stages"]]
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
        want_report = cfg["run"].get("report", True) if report is None else report
        if want_report and not isinstance(failure, KeyboardInterrupt):
            try:
                from docsynth.report.page import RunFolder, evaluation_remark, write_report

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
    overrides = stage.configure(cfg, stage_dir, inputs)
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
            ctx = StageContext(cfg=stage_cfg, out=stage_dir, inputs=inputs, resume=resume,
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


# ---------------------------------------------------------------------------------------------
# The built-in stages: thin adapters from a run folder to each stage's own Python entry point
# ---------------------------------------------------------------------------------------------


def _unused(cfg: dict[str, Any], section: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """Keys made irrelevant by an upstream stage, kept as they are: returning them as
    overrides takes them out of the stage's key, so editing them reruns nothing."""
    return {f"{section}.{k}": cfg[section][k] for k in keys if k in cfg[section]}


def _configure_generate(cfg: dict[str, Any], out: Path, inputs: dict[str, Path]) -> dict[str, Any]:
    overrides: dict[str, Any] = {"generate.out": str(out)}
    if "sources" in inputs:
        overrides.update(_unused(cfg, "generate", ("source", "source_options", "documents_count")))
        overrides["generate.documents"] = str(inputs["sources"])
    if "backgrounds" in inputs:
        overrides.update(_unused(cfg, "generate", ("background_provider", "background_options",
                                                   "backgrounds_count")))
        overrides["generate.backgrounds"] = str(inputs["backgrounds"])
    return overrides


def _execute_generate(ctx: StageContext) -> dict[str, Any]:
    from docsynth.generate.shards import generate

    # force: the runner owns the folder (it was emptied for a fresh start; on a resume the
    # dataset's own fingerprint matches and finished shards are kept).
    return generate(ctx.cfg, force=True, progress=ctx.progress, on_start=ctx.on_start, note=ctx.log)


def _check_generate(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    from docsynth.generate.preflight import compositor_problem

    problems = _at_least(cfg, {"generate.per_document": 1, "generate.shard_size": 1, "generate.workers": 1,
                               "generate.documents_count": 1, "generate.backgrounds_count": 1})
    name, options = lookup(cfg, "generate.compositor"), lookup(cfg, "generate.compositor_options")
    if name in plugins.names("compositor") and isinstance(options, dict):  # else reported already
        problem = compositor_problem(name, options)
        if problem:
            problems.append(("generate.compositor_options", problem))
    return problems


def _configure_split(cfg: dict[str, Any], out: Path, inputs: dict[str, Path]) -> dict[str, Any]:
    return {"split.out": str(out)}


def _execute_split(ctx: StageContext) -> dict[str, Any]:
    from docsynth.dataset.split import split

    sp = ctx.cfg["split"]
    seed = sp["seed"] if sp.get("seed") is not None else ctx.cfg["seed"]
    return split(ctx.inputs["generate"], ctx.out, seed=seed, valid_fraction=sp["valid_fraction"],
                 valid_per_group=sp["valid_per_group"], group_by=sp["group_by"], max_size=sp["max_size"],
                 force=True, progress=ctx.progress, on_start=ctx.on_start)


def _check_split(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    fraction = lookup(cfg, "split.valid_fraction")
    if isinstance(fraction, (int, float)) and not 0 < fraction < 1 and lookup(cfg, "split.valid_per_group") is None:
        return [("split.valid_fraction", f"'split.valid_fraction' is {fraction}, must be between 0 and 1")]
    return []


def _configure_sources(cfg: dict[str, Any], out: Path, inputs: dict[str, Path]) -> dict[str, Any]:
    return {"sources.out": str(out)}


def _execute_sources(ctx: StageContext) -> dict[str, Any]:
    from docsynth.sources.prepare import prepare

    return prepare(ctx.cfg, force=True, progress=ctx.progress, on_start=ctx.on_start, warn=ctx.log)


def _check_sources(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    """Every mix entry names a source whose data is here (procedural needs none)."""
    from docsynth.sources.store import describe

    problems = []
    mix = lookup(cfg, "sources.mix") or {}
    if not mix:
        problems.append(("sources.mix", "'sources.mix' is empty; name at least one source, e.g. procedural: 24"))
    for entry in mix:
        try:
            info = describe(cfg, entry, count=True)
        except DocsynthError as exc:
            problems.append((f"sources.mix.{entry}", str(exc).splitlines()[0]))
            continue
        if not info["present"]:
            problems.append((f"sources.mix.{entry}", f"source {entry!r} has no documents here "
                             f"({info['note'] or 'nothing found under ' + str(info['root'])})"))
    return problems + _at_least(cfg, {"sources.max_size": 16, "sources.workers": 1})


def _configure_backgrounds(cfg: dict[str, Any], out: Path, inputs: dict[str, Path]) -> dict[str, Any]:
    return {"backgrounds.out": str(out)}


def _execute_backgrounds(ctx: StageContext) -> dict[str, Any]:
    """Fill the folder from the provider (search-and-download for scraping providers, rendered
    or copied images for the others), then normalise, dedupe and credit it."""
    from docsynth.backgrounds import folder as bg
    from docsynth.backgrounds.dedupe import dedupe_folder

    section = ctx.cfg["backgrounds"]
    name = section["provider"]
    provider = plugins.get("background", name)
    options = dict(section["options"].get(name) or {})
    if callable(getattr(provider, "search", None)):
        collected = bg.scrape(provider, list(section["queries"]), ctx.out, limit=section["per_query"],
                              settings=bg.settings_from_config(section), client=bg.client_from_config(section),
                              options={"licences": section["licences"], **options},
                              on_start=ctx.on_start, progress=ctx.progress)
    else:
        from docsynth.backgrounds.folder import collect

        collected = collect(provider, name, ctx.out, count=section["count"], seed=ctx.cfg["seed"],
                            options=options, jpeg_quality=section["jpeg_quality"],
                            on_start=ctx.on_start, progress=ctx.progress)
    dedupe = dedupe_folder(ctx.out, section["dedupe_threshold"], apply=True)
    credits = bg.write_credits(ctx.out, force=True)
    return {"provider": name, "collected": collected, "duplicates": dedupe.get("duplicates"),
            "images": len(bg.folder_backgrounds(ctx.out)), "credited": credits.get("credited")}


def _configure_train(cfg: dict[str, Any], out: Path, inputs: dict[str, Path]) -> dict[str, Any]:
    overrides: dict[str, Any] = {"train.out": str(out)}
    if "split" in inputs:
        overrides.update(_unused(cfg, "train", ("valid_fraction",)))  # only for unsplit datasets
    if not cfg["train"].get("online"):
        overrides.update(_unused(cfg, "train", ("online_options",)))
    if cfg["train"].get("eval_real"):
        overrides["train.eval_real"] = str(Path(cfg["train"]["eval_real"]).resolve())
    if cfg["train"].get("online"):
        # the online stream draws from this run's prepared pages and backgrounds when it has them
        online = dict(cfg["train"].get("online_options") or {})
        if "sources" in inputs and not online.get("documents"):
            online["documents"] = str(inputs["sources"])
        if "backgrounds" in inputs and not online.get("backgrounds"):
            online["backgrounds"] = str(inputs["backgrounds"])
        overrides["train.online_options"] = online
    return overrides


def _execute_train(ctx: StageContext) -> dict[str, Any]:
    from docsynth.train.loop import train

    if ctx.resume and (ctx.out / "last.pt").is_file():
        # same config as the interrupted attempt: continue from last.pt exactly
        summary = train(None, resume=ctx.out, overrides={"train.out": str(ctx.out)})
    else:
        data = ctx.inputs.get("split") or ctx.inputs.get("generate")
        summary = train(ctx.cfg, data=None if data is None else str(data), force=True)
    summary = summary or {}
    if summary.get("interrupted"):
        # Ctrl-C inside training saves last.pt and returns; the stage is not complete
        raise KeyboardInterrupt(f"training stopped after epoch {summary.get('epochs_done')}; rerun to resume")
    return summary


def _check_train(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    problems = _at_least(cfg, {"train.epochs": 1, "train.batch_size": 1, "train.input_size": 16,
                               "train.accumulate": 1})
    stages = lookup(cfg, "run.stages") or []
    if not lookup(cfg, "train.online") and "split" not in stages and "generate" not in stages:
        problems.append(("run.stages", "stage 'train' reads the output of split or generate (or set "
                         "train.online: true); add one of them to run.stages"))
    problems += _existing_folder(cfg, "train.eval_real", "real photos")
    if lookup(cfg, "train.weights") == "packaged":
        from docsynth.scan.packaged import weights_problem

        problem = weights_problem(cfg["train"])
        if problem:
            problems.append(("train.weights", problem))
    return problems


def _configure_evaluate(cfg: dict[str, Any], out: Path, inputs: dict[str, Path]) -> dict[str, Any]:
    overrides: dict[str, Any] = {"evaluate.out": str(out)}
    if "train" in inputs:
        overrides["evaluate.checkpoint"] = str(inputs["train"] / "best.pt")
    if cfg["evaluate"].get("data"):
        overrides["evaluate.data"] = str(Path(cfg["evaluate"]["data"]).resolve())
    return overrides


def _execute_evaluate(ctx: StageContext) -> dict[str, Any]:
    """Score the trained model (and the baseline) on real photos with corners.csv; without
    ``evaluate.data``, on held-out synthetic composites (said so in the results)."""
    from docsynth.evaluate import command as ev

    section = ctx.cfg["evaluate"]
    note = ""
    data = section.get("data")
    if not data:
        data = str(_heldout_photos(ctx))
        note = ("No real photos configured (evaluate.data is null): scored on held-out synthetic composites "
                "from the validation split. Set evaluate.data to a folder of real photos with corners.csv.")
    report = ev.run_evaluation(data, section["checkpoint"], post=section["postprocessor"],
                               post_options=section["postprocessor_options"], baseline=section.get("baseline"),
                               out=ctx.out, worst=section["worst"], force=True, progress=_StageBar(ctx),
                               remark=note, warn=lambda msg: ctx.log(f"warning: {msg}"),
                               packaged=section["packaged"])
    results = report["methods"]
    items = next(iter(results.values()))["count"] if results else 0
    return {"data": data, "photos": items, "synthetic": bool(note),
            "mean_jaccard": {name: round(r["mean_jaccard"], 4) for name, r in results.items()},
            "mean_mask_iou": {name: round(r["mean_mask_iou"], 4) for name, r in results.items()}}


class _StageBar:
    """The progress object run_evaluation expects, fed to the stage's callbacks."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx

    def start(self, total: int) -> None:
        if self.ctx.on_start:
            self.ctx.on_start(total, 0)

    def advance(self, n: int = 1) -> None:
        if self.ctx.progress:
            self.ctx.progress(n)


def _heldout_photos(ctx: StageContext, limit: int = 24) -> Path:
    """A corners.csv folder of validation composites (those with a page), for runs without
    real photos."""
    from docsynth.formats import corners as corners_csv
    from docsynth.io import read_jsonl

    source = ctx.inputs.get("split")
    folder = source / "valid" if source else None
    if folder is None or not (folder / "manifest.jsonl").is_file():
        raise DocsynthError("evaluate.data: null and no validation split in this run; set evaluate.data to a "
                            "folder of real photos with corners.csv")
    rows = [r for r in read_jsonl(folder / "manifest.jsonl") if r.get("corners") and "negative" not in (r.get("flags") or [])]
    rows = rows[:limit]
    if not rows:
        raise DocsynthError(f"{folder}: no validation sample with a page to score on; set evaluate.data")
    out = ctx.out / "heldout"
    out.mkdir(parents=True, exist_ok=True)
    for r in rows:
        target = out / Path(r["image"]).name
        if not target.is_file():
            shutil.copyfile(folder / r["image"], target)
    corners_csv.write(out / corners_csv.FILENAME, [(Path(r["image"]).name, r["corners"]) for r in rows])
    return out


def _check_evaluate(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    problems = _existing_folder(cfg, "evaluate.data", "photos")
    data = lookup(cfg, "evaluate.data")
    if isinstance(data, str) and Path(data).is_dir() and not (Path(data) / "corners.csv").is_file():
        problems.append(("evaluate.data", f"'evaluate.data' is {data!r}: it has no corners.csv "
                         "(image,tl_x,tl_y,tr_x,tr_y,br_x,br_y,bl_x,bl_y)"))
    if lookup(cfg, "evaluate.packaged") is True:
        from docsynth.scan.scanner import PACKAGED_MODEL, packaged_model_available

        if not packaged_model_available():
            problems.append(("evaluate.packaged", f"'evaluate.packaged' is true but no packaged model is installed "
                             f"({PACKAGED_MODEL.with_suffix('.onnx')} and {PACKAGED_MODEL} are missing); set it to false"))
    return problems + _at_least(cfg, {"evaluate.worst": 0})


def _generate_ignore() -> frozenset[str]:
    from docsynth.generate.shards import NON_OUTPUT_KEYS

    return frozenset(f"generate.{k}" for k in NON_OUTPUT_KEYS)


def builtin_stages() -> dict[str, Stage]:
    stages = [
        Stage("sources", ("seed", "sources"), _execute_sources, _configure_sources, "documents.jsonl",
              ignore=frozenset({"sources.workers"}), check=_check_sources,
              help="prepare a seeded mix of document pages"),
        Stage("backgrounds", ("seed", "backgrounds"), _execute_backgrounds, _configure_backgrounds,
              "backgrounds.jsonl",
              ignore=frozenset(f"backgrounds.{k}" for k in ("contact", "rate_limit", "retries", "backoff",
                                                            "max_wait", "timeout")),
              help="collect, normalise and dedupe background photos"),
        Stage("generate", ("seed", "generate"), _execute_generate, _configure_generate, "manifest.jsonl",
              reads=(("sources",), ("backgrounds",)), ignore=_generate_ignore(), check=_check_generate,
              help="composite documents onto backgrounds"),
        Stage("split", ("seed", "split"), _execute_split, _configure_split, "split.yaml",
              reads=(("generate",),), required=(0,), check=_check_split,
              help="train/ and valid/ without leaking pages"),
        Stage("train", ("train",), _execute_train, _configure_train, "best.pt",
              reads=(("split", "generate"), ("sources",), ("backgrounds",)),
              check=_check_train, own_progress=True,
              ignore=frozenset(f"train.{k}" for k in ("workers", "threads", "checkpoint_minutes")),
              help="train the page model"),
        Stage("evaluate", ("evaluate",), _execute_evaluate, _configure_evaluate, "results.json",
              reads=(("train",), ("split",)), required=(0,), check=_check_evaluate,
              ignore=frozenset({"evaluate.out"}), help="score the model and the baseline on real photos"),
    ]
    return {s.name: s for s in stages}


STAGES: dict[str, Stage] = builtin_stages()
