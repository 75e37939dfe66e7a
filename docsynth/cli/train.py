"""Command `docsynth train` (docsynth/train/; torch is imported inside the command only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from docsynth import outputs
from docsynth.cli.common import ConfigOpt, JsonOpt, emit, load_config, path_or_none
from docsynth.schema import RunConfig


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)


def train_cmd(
    data: Path | None = typer.Argument(None, help="Split folder (train/ + valid/) or generated dataset; "
                                                  "with --online: the validation data (optional)."),
    backbone: str | None = typer.Option(None, "--backbone", "-b", help="Backbone plugin."),
    epochs: int | None = typer.Option(None, "--epochs", "-e", help="Training epochs."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run folder (best.pt, last.pt, metrics)."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue the run in this folder exactly."),
    weights: str | None = typer.Option(None, "--weights", help="none, imagenet, coco or a weights file."),
    eval_real: Path | None = typer.Option(None, "--eval-real", help="Real photos with corners.csv, "
                                                                    "scored after each epoch."),
    online: bool | None = typer.Option(None, "--online/--no-online", help="Fresh composites every step."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Global batch size."),
    input_size: int | None = typer.Option(None, "--input-size", help="Square input side."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="DataLoader workers."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or mps."),
    seed: int | None = typer.Option(None, "--seed", help="Training seed (initialisation and order; "
                                                         "the data stream follows the master seed)."),
    force: bool = typer.Option(False, "--force", help="Start over in a run folder that holds a run."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Train a page-segmentation (and corner) model; resumable, torchrun-aware."""
    from docsynth.train.command import train  # imports torch: docsynth --help must not

    overrides: dict[str, Any] = {
        "train.backbone": backbone, "train.epochs": epochs, "train.weights": weights,
        "train.out": path_or_none(out), "train.online": online, "train.eval_real": path_or_none(eval_real),
        "train.batch_size": batch_size, "train.input_size": input_size, "train.workers": workers,
        "train.device": device, "train.seed": seed,
    }
    # A resumed run continues with the config saved in its last.pt.
    cfg: RunConfig | None = None
    if resume is not None:
        run_dir = resume
    else:
        cfg = load_config(config, overrides)
        run_dir = Path(cfg.train.out)
    outputs.check_folder(run_dir, "--resume" if resume is not None else "--out")
    outputs.refuse_overlap(run_dir, [data])
    summary = train(cfg, data=None if data is None else str(data), resume=resume, force=force,
                    overrides={k: v for k, v in overrides.items() if v is not None})
    if summary is None:  # not rank 0 under torchrun
        return
    human = (f"trained {summary['backbone']} for {summary['epochs_done']} epochs in {summary['run']}: "
             f"best valid IoU {summary['best_valid_iou']} (epoch {summary['best_epoch']})"
             + (f", real IoU {summary['real_iou']}" if summary.get("real_iou") is not None else "")
             + (" (stopped early)" if summary.get("stopped_early") else "")
             + (" (interrupted; --resume to continue)" if summary.get("interrupted") else ""))
    emit(summary, as_json, human)
    if summary.get("interrupted"):
        raise typer.Exit(130)  # like any interrupted command; last.pt is saved
