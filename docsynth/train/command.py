"""`docsynth train`'s entry point: a new run (its folder checked, ``weights: packaged`` checked
before any file is touched) or a resume (the config saved in ``last.pt``, where only
:data:`RESUME_OVERRIDES` may change); then the :class:`docsynth.train.loop.Trainer` runs it."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.distributed as dist

from docsynth.config import apply_overrides, lookup, typed
from docsynth.errors import DocsynthError
from docsynth.scan.model_contract import read_checkpoint
from docsynth.scan.packaged import weights_problem
from docsynth.schema import RunConfig
from docsynth.train.loop import Trainer

RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "curves.png")
# Keys that may change when resuming: they do not alter the computation (or, for epochs,
# only extend it).
RESUME_OVERRIDES = {"train.epochs", "train.workers", "train.device", "train.eval_real", "train.threads",
                    "train.checkpoint_minutes"}


def train(cfg: RunConfig | None, *, data: str | None = None, resume: str | Path | None = None,
          force: bool = False, overrides: dict[str, Any] | None = None,
          on_step: Callable[[Trainer], None] | None = None) -> dict[str, Any] | None:
    """Train (or continue) a run; returns its summary on rank 0, None on other ranks.

    ``cfg`` is the effective config of a new run. With ``resume`` (a run folder) the config
    saved in its ``last.pt`` is used; only ``RESUME_OVERRIDES`` may change."""
    overrides = overrides or {}
    ckpt = None
    if resume is not None:
        out = Path(resume)
        ckpt = read_checkpoint(out / "last.pt")
        saved = copy.deepcopy(ckpt["config"])  # the config as a mapping: checkpoints hold no classes
        bad = {k: v for k, v in overrides.items() if k not in RESUME_OVERRIDES and k != "train.out"
               and lookup(saved, k) != v}
        if bad:
            raise DocsynthError(f"--resume {out}: continues the saved config; {', '.join(sorted(bad))} "
                                "cannot change (start a new run with --out instead)")
        epochs = lookup(saved, "train.epochs")
        if overrides.get("train.epochs", epochs) != epochs and lookup(saved, "train.schedule") == "cosine":
            raise DocsynthError(f"--resume {out}: --epochs cannot change a cosine-schedule run "
                                "(its learning rates depend on the total)")
        cfg = typed(apply_overrides(saved, {k: v for k, v in overrides.items() if k in RESUME_OVERRIDES}))
        data = data or ckpt.get("data")
    else:
        if cfg is None:
            raise ValueError("train() needs a config for a new run")
        if cfg.train.weights == "packaged":  # before any file is touched
            problem = weights_problem(cfg.train)
            if problem:
                raise DocsynthError(problem)
        out = Path(cfg.train.out)
        if out.exists() and not out.is_dir():
            raise DocsynthError(f"{out}: exists and is not a folder; choose another --out")
        if any((out / name).exists() for name in RUN_FILES):
            if not force:
                raise DocsynthError(f"{out}: holds a training run; --resume {out} to continue it, "
                                    "--force to start over, or choose another --out")
            if int(os.environ.get("RANK", "0")) == 0:
                for name in RUN_FILES:
                    (out / name).unlink(missing_ok=True)
        if data is not None:
            data = str(Path(data).resolve())
        if cfg.train.eval_real:
            cfg.train.eval_real = str(Path(cfg.train.eval_real).resolve())
    if int(os.environ.get("RANK", "0")) == 0:
        out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(cfg, data=data, out=out, ckpt=ckpt, on_step=on_step)
    try:
        summary = trainer.run()
    finally:
        if trainer.dist.enabled:
            dist.barrier()
            dist.destroy_process_group()
    return summary if trainer.dist.main else None
