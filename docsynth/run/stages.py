"""The built-in stages of `docsynth run`: thin adapters from a run folder to each stage's own
Python entry point (``configure``: the overrides that wire a stage to its folders; ``execute``:
the call; ``check``: the stage's own config checks). :data:`STAGES` is what ``run`` walks.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from docsynth import plugins
from docsynth.backgrounds.credits import write_credits
from docsynth.backgrounds.dedupe import dedupe_folder
from docsynth.backgrounds.folder import collect_backgrounds, folder_backgrounds
from docsynth.backgrounds.scrape import client_from_config, scrape, settings_from_config
from docsynth.config import lookup, typed
from docsynth.dataset.split import split
from docsynth.errors import DocsynthError, Incomplete
from docsynth.evaluate import command as ev
from docsynth.formats import corners as corners_csv
from docsynth.generate.preflight import compositor_problem
from docsynth.generate.shards import NON_OUTPUT_KEYS, failure_line, generate
from docsynth.io import read_jsonl
from docsynth.kinds import can_scrape
from docsynth.run.checks import existing_folder
from docsynth.run.engine import Stage, StageContext
from docsynth.scan import scanner  # scanner.PACKAGED_MODEL read at call time: it can be moved
from docsynth.scan.packaged import weights_problem
from docsynth.schema import RunConfig
from docsynth.sources.prepare import prepare
from docsynth.sources.store import describe

# ---------------------------------------------------------------------------------------------
# The built-in stages: thin adapters from a run folder to each stage's own Python entry point
# ---------------------------------------------------------------------------------------------


def _unused(cfg: RunConfig, section: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """Keys made irrelevant by an upstream stage, kept as they are: returning them as
    overrides takes them out of the stage's key, so editing them reruns nothing."""
    values = getattr(cfg, section)
    return {f"{section}.{k}": getattr(values, k) for k in keys}


def _configure_generate(cfg: RunConfig, out: Path, inputs: dict[str, Path]) -> dict[str, Any]:
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
    # force: the runner owns the folder (it was emptied for a fresh start; on a resume the
    # dataset's own fingerprint matches and finished shards are kept).
    summary = generate(ctx.cfg, force=True, progress=ctx.progress, note=ctx.log)
    if not summary["complete"]:  # the stage is not done: a rerun retries the failed samples
        raise Incomplete(failure_line(summary))
    return summary


def _check_generate(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    problems = []
    name, options = lookup(cfg, "generate.compositor"), lookup(cfg, "generate.compositor_options")
    if name in plugins.names("compositor") and isinstance(options, dict):  # else reported already
        problem = compositor_problem(name, options)
        if problem:
            problems.append(("generate.compositor_options", problem))
    return problems


def _configure_split(cfg: RunConfig, out: Path, inputs: dict[str, Path]) -> dict[str, Any]:
    return {"split.out": str(out)}


def _execute_split(ctx: StageContext) -> dict[str, Any]:
    sp = ctx.cfg.split
    seed = sp.seed if sp.seed is not None else ctx.cfg.seed
    return split(ctx.inputs["generate"], ctx.out, seed=seed, valid_fraction=sp.valid_fraction,
                 valid_per_group=sp.valid_per_group, group_by=sp.group_by, max_size=sp.max_size,
                 force=True, progress=ctx.progress)


def _configure_sources(cfg: RunConfig, out: Path, inputs: dict[str, Path]) -> dict[str, Any]:
    return {"sources.out": str(out)}


def _execute_sources(ctx: StageContext) -> dict[str, Any]:
    return prepare(ctx.cfg, force=True, progress=ctx.progress, warn=ctx.log)


def _check_sources(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    """Every mix entry names a source whose data is here (procedural needs none)."""
    problems = []
    mix = lookup(cfg, "sources.mix") or {}
    if not mix:
        problems.append(("sources.mix", "'sources.mix' is empty; name at least one source, e.g. procedural: 24"))
    for entry in mix:
        try:
            info = describe(typed(cfg), entry, count=True)
        except DocsynthError as exc:
            problems.append((f"sources.mix.{entry}", str(exc).splitlines()[0]))
            continue
        if not info["present"]:
            problems.append((f"sources.mix.{entry}", f"source {entry!r} has no documents here "
                             f"({info['note'] or 'nothing found under ' + str(info['root'])})"))
    return problems


def _configure_backgrounds(cfg: RunConfig, out: Path, inputs: dict[str, Path]) -> dict[str, Any]:
    return {"backgrounds.out": str(out)}


def _execute_backgrounds(ctx: StageContext) -> dict[str, Any]:
    """Fill the folder from the provider (search-and-download for scraping providers, rendered
    or copied images for the others), then normalise, dedupe and credit it."""
    section = ctx.cfg.backgrounds
    name = section.provider
    provider = plugins.get("background", name)
    options = dict(section.options.get(name) or {})
    if can_scrape(provider):
        collected = scrape(provider, list(section.queries), ctx.out, limit=section.per_query,
                           settings=settings_from_config(section), client=client_from_config(section),
                           options={"licences": section.licences, **options},
                           progress=ctx.progress)
    else:
        collected = collect_backgrounds(provider, name, ctx.out, count=section.count, seed=ctx.cfg.seed,
                                        options=options, jpeg_quality=section.jpeg_quality,
                                        progress=ctx.progress)
    dedupe = dedupe_folder(ctx.out, section.dedupe_threshold, apply=True)
    credits = write_credits(ctx.out, force=True)
    return {"provider": name, "collected": collected, "duplicates": dedupe.get("duplicates"),
            "images": len(folder_backgrounds(ctx.out)), "credited": credits.get("credited")}


def _configure_train(cfg: RunConfig, out: Path, inputs: dict[str, Path]) -> dict[str, Any]:
    overrides: dict[str, Any] = {"train.out": str(out)}
    if "split" in inputs:
        overrides.update(_unused(cfg, "train", ("valid_fraction",)))  # only for unsplit datasets
    if not cfg.train.online:
        overrides.update(_unused(cfg, "train", ("online_options",)))
    if cfg.train.eval_real:
        overrides["train.eval_real"] = str(Path(cfg.train.eval_real).resolve())
    if cfg.train.online:
        # the online stream draws from this run's prepared pages and backgrounds when it has them
        online = dict(cfg.train.online_options)
        if "sources" in inputs and not online.get("documents"):
            online["documents"] = str(inputs["sources"])
        if "backgrounds" in inputs and not online.get("backgrounds"):
            online["backgrounds"] = str(inputs["backgrounds"])
        overrides["train.online_options"] = online
    return overrides


def _execute_train(ctx: StageContext) -> dict[str, Any]:
    from docsynth.train.command import train  # imports torch: run up to split must not

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
    problems = []
    stages = lookup(cfg, "run.stages") or []
    if not lookup(cfg, "train.online") and "split" not in stages and "generate" not in stages:
        problems.append(("run.stages", "stage 'train' reads the output of split or generate (or set "
                         "train.online: true); add one of them to run.stages"))
    problems += existing_folder(cfg, "train.eval_real", "real photos")
    if lookup(cfg, "train.weights") == "packaged":
        problem = weights_problem(typed(cfg).train)
        if problem:
            problems.append(("train.weights", problem))
    return problems


def _configure_evaluate(cfg: RunConfig, out: Path, inputs: dict[str, Path]) -> dict[str, Any]:
    overrides: dict[str, Any] = {"evaluate.out": str(out)}
    if "train" in inputs:
        overrides["evaluate.checkpoint"] = str(inputs["train"] / "best.pt")
    if cfg.evaluate.data:
        overrides["evaluate.data"] = str(Path(cfg.evaluate.data).resolve())
    return overrides


def _execute_evaluate(ctx: StageContext) -> dict[str, Any]:
    """Score the trained model (and the baseline) on real photos with corners.csv; without
    ``evaluate.data``, on held-out synthetic composites (said so in the results)."""
    section = ctx.cfg.evaluate
    note = ""
    data = section.data
    if not data:
        data = str(_heldout_photos(ctx))
        note = ("No real photos configured (evaluate.data is null): scored on held-out synthetic composites "
                "from the validation split. Set evaluate.data to a folder of real photos with corners.csv.")
    report = ev.run_evaluation(data, section.checkpoint, post=section.postprocessor,
                               post_options=section.postprocessor_options, baseline=section.baseline,
                               out=ctx.out, worst=section.worst, force=True, progress=ctx.progress,
                               remark=note, warn=lambda msg: ctx.log(f"warning: {msg}"),
                               packaged=section.packaged)
    results = report["methods"]
    items = next(iter(results.values()))["count"] if results else 0
    return {"data": data, "photos": items, "synthetic": bool(note),
            "mean_jaccard": {name: round(r["mean_jaccard"], 4) for name, r in results.items()},
            "mean_mask_iou": {name: round(r["mean_mask_iou"], 4) for name, r in results.items()}}


def _heldout_photos(ctx: StageContext, limit: int = 24) -> Path:
    """A corners.csv folder of validation composites (those with a page), for runs without
    real photos."""
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
    problems = existing_folder(cfg, "evaluate.data", "photos")
    data = lookup(cfg, "evaluate.data")
    if isinstance(data, str) and Path(data).is_dir() and not (Path(data) / "corners.csv").is_file():
        problems.append(("evaluate.data", f"'evaluate.data' is {data!r}: it has no corners.csv "
                         "(image,tl_x,tl_y,tr_x,tr_y,br_x,br_y,bl_x,bl_y)"))
    if lookup(cfg, "evaluate.packaged") is True and not scanner.packaged_model_available():
        problems.append(("evaluate.packaged", f"'evaluate.packaged' is true but no packaged model is installed "
                         f"({scanner.PACKAGED_MODEL.with_suffix('.onnx')} and {scanner.PACKAGED_MODEL} are missing); "
                         "set it to false"))
    return problems


def _generate_ignore() -> frozenset[str]:
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
              reads=(("generate",),), required=(0,),
              help="train/ and valid/ without leaking pages"),
        Stage("train", ("train",), _execute_train, _configure_train, "best.pt",
              reads=(("split", "generate"), ("sources",), ("backgrounds",)),
              check=_check_train, own_bar=True,
              ignore=frozenset(f"train.{k}" for k in ("workers", "threads", "checkpoint_minutes")),
              help="train the page model"),
        Stage("evaluate", ("evaluate",), _execute_evaluate, _configure_evaluate, "results.json",
              reads=(("train",), ("split",)), required=(0,), check=_check_evaluate,
              ignore=frozenset({"evaluate.out"}), help="score the model and the baseline on real photos"),
    ]
    return {s.name: s for s in stages}


STAGES: dict[str, Stage] = builtin_stages()
