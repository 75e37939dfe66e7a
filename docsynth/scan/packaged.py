"""The packaged model as a starting point and a yardstick.

``train.weights: packaged`` fine-tunes from the packaged checkpoint
(``docsynth/assets/docsynth-cpu.pt``); :func:`weights_problem` says, before any work, why a
train section cannot start from it (no packaged checkpoint, another backbone or other
backbone options). ``evaluate.packaged: true`` scores the packaged model beside a run's own
model; :func:`facts` describes it for the report.

torch is imported inside the functions: `docsynth --help` and `generate` never import it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.scan import scanner
from docsynth.scan.model_contract import read_checkpoint
from docsynth.schema import TrainSection

PACKAGED = "packaged"  # the train.weights value


def checkpoint_path() -> Path:
    return scanner.PACKAGED_MODEL  # read at call time: tests move it


@lru_cache(maxsize=4)
def _read(path: str, mtime: float) -> dict[str, Any]:
    return read_checkpoint(path)


def checkpoint() -> dict[str, Any]:
    """The packaged checkpoint (weights and meta); DocsynthError when it is missing or unreadable."""
    path = checkpoint_path()
    return _read(str(path), path.stat().st_mtime if path.is_file() else 0.0)


def _flow(options: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in sorted(options.items())) + "}"


def weights_problem(train: TrainSection) -> str | None:
    """Why ``train`` (a config's train section with ``weights: packaged``) cannot start from the
    packaged checkpoint, in one line; None when it can. The architecture must be the packaged
    model's: same backbone and backbone options (options that build the same layers, e.g. a
    default written out, are fine). input_size, mean and std may differ."""
    path = checkpoint_path()
    if not path.is_file():
        return (f"'train.weights' is 'packaged' but this install has no packaged checkpoint ({path}); "
                "train from scratch (weights: none) or name a weights file")
    try:
        # a probe: is torch installed?
        import torch  # noqa: F401
    except ImportError:
        return None  # the missing torch is reported on its own, in one line
    try:
        ckpt = checkpoint()
    except DocsynthError as exc:
        return f"'train.weights' is 'packaged' but {str(exc).splitlines()[0]}"
    want, want_options = ckpt["backbone"], dict(ckpt.get("backbone_options") or {})
    have, have_options = train.backbone, dict(train.backbone_options)
    fix = (f"set train.backbone: {want} and train.backbone_options: {_flow(want_options)}, or train from "
           "scratch (weights: none)")
    if have != want:
        return f"'train.weights' is 'packaged', a {want} model, but train.backbone is {have!r}; {fix}"
    if have_options == want_options:
        return None
    try:
        backbone = plugins.get("backbone", have)
        model = backbone.build(int(ckpt.get("num_classes", 2)), "none",
                               options_mod.build(backbone, have_options, "train.backbone_options"))
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    except Exception as exc:  # options the backbone refuses
        return (f"'train.weights' is 'packaged' but train.backbone_options {_flow(have_options)} do not build a "
                f"{have} model ({type(exc).__name__}); {fix}")
    if shapes != {k: tuple(v.shape) for k, v in ckpt["model"].items()}:
        return (f"'train.weights' is 'packaged' but train.backbone_options {_flow(have_options)} build another "
                f"{have} model than the packaged one; {fix}")
    return None


def facts() -> dict[str, Any]:
    """What the report says about the packaged model: the file scan uses, its backbone and,
    when torch can read the checkpoint, how it was trained."""
    info: dict[str, Any] = {"model": str(scanner.packaged_model_path())}
    path = checkpoint_path()
    if not path.is_file():
        return info
    try:
        # a probe: without torch the report names the file only
        import torch  # noqa: F401

        ckpt = checkpoint()
    except Exception:  # no torch, or an unreadable checkpoint: the file name is enough
        return info
    training = ckpt.get("training") or {}
    train_cfg = training.get("train_config") or {}
    online = train_cfg.get("online_options") or {}
    info.update({
        "backbone": ckpt.get("backbone"), "backbone_options": ckpt.get("backbone_options"),
        "input_size": ckpt.get("input_size"), "epochs": ckpt.get("epoch"), "steps": ckpt.get("step"),
        "samples_per_epoch": online.get("samples_per_epoch") if train_cfg.get("online") else None,
        "train_wall_seconds": training.get("train_wall_seconds"), "recipe": training.get("recipe"),
    })
    return info
