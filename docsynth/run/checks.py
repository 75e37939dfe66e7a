"""The config checks of `docsynth run`: everything that can be checked without running anything
(config types, stage names and order, plugin names, input folders, each stage's own checks) is
checked before the first stage and reported all at once, with file and line.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from docsynth import config as config_mod
from docsynth import options, outputs, plugins
from docsynth.config import Loaded, lookup
from docsynth.errors import DocsynthError
from docsynth.formats.runfolder import STAGE_ORDER
from docsynth.run.engine import Stage, stage_inputs

# ---------------------------------------------------------------------------------------------
# Config problems, all at once
# ---------------------------------------------------------------------------------------------


def load_config(path: str | Path | None) -> Loaded:
    """Defaults <- the YAML file, keeping going past type problems so that every problem in the
    file (types, unknown keys, and the run checks after) is reported in one go."""
    return config_mod.read(path, keep_going=True)


# generate's source and background provider are only used when no upstream stage fills the
# folders: checked on their own below.
_CHECKED_APART = {"generate.source", "generate.background_provider"}


def check(loaded: Loaded, stages: dict[str, Stage], *, start: str | None = None,
          until: str | None = None, force: list[str] | None = None) -> list[str]:
    """Every problem that can be found before a stage starts, one line each."""
    problems = list(loaded.problems)
    cfg = loaded.cfg
    problems += options.problems(cfg, str(loaded.path or "config"), loaded.lines)

    def add(dotted: str, message: str) -> None:
        problems.append(f"{loaded.where(dotted)}: {message}")

    selected = lookup(cfg, "run.stages")
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

    torch_stages = [name for name in active if name in TORCH_STAGES]  # --until split needs no torch
    if torch_stages and not _importable("torch"):  # say so now, not after the first stages ran
        which = ("stage " if len(torch_stages) == 1 else "stages ") + " and ".join(map(repr, torch_stages))
        add("run.stages", f"{which} {'needs' if len(torch_stages) == 1 else 'need'} PyTorch, which is not installed: "
            "pip install torch==2.14.1 torchvision==0.29.1 (see README), or remove "
            f"{'it' if len(torch_stages) == 1 else 'them'} from run.stages")
    try:  # before any stage: a run folder under a file or in a read-only place
        outputs.check_folder(lookup(cfg, "run.dir"), "run.dir")
    except DocsynthError as exc:
        add("run.dir", str(exc))
    host_names = {kind: set(plugins.names(kind)) for kind, _ in options.PLUGINS.values()}
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
    for dotted, (kind, _) in options.PLUGINS.items():
        section = dotted.split(".")[0]
        if dotted in _CHECKED_APART or not _section_used(section, order):
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


def existing_folder(cfg: dict[str, Any], dotted: str, what: str) -> list[tuple[str, str]]:
    value = lookup(cfg, dotted)
    if isinstance(value, str) and value and not Path(value).is_dir():
        return [(dotted, f"'{dotted}' is {value!r}: {what} folder not found")]
    return []
