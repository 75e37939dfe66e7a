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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from docsynth.errors import DocsynthError
from docsynth.formats.runfolder import LOCK, RECORD
from docsynth.io import atomic_write_text
from docsynth.progress import Progress
from docsynth.schema import RunConfig

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
    progress: Progress = field(default_factory=Progress)  # the stage's bar under the CLI
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
    own_bar: bool = False  # the stage draws its own progress bar
    help: str = ""


def stage_inputs(stage: Stage, selected: list[str]) -> dict[tuple[str, ...], str]:
    """slot alternatives -> the upstream stage that fills it (only filled slots)."""
    used: dict[tuple[str, ...], str] = {}
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
