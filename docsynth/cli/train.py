"""Commands `docsynth split` and `docsynth train` (torch is imported inside `train` only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from docsynth.errors import DocsynthError


def register(app: typer.Typer) -> None:
    from docsynth.cli.app import ConfigOpt, JsonOpt, emit, load_config
    from docsynth.progress import progress_bar
    from docsynth.schema import RunConfig

    @app.command("split")
    def split_cmd(
        dataset: Path = typer.Argument(..., help="Generated dataset (manifest.jsonl, images/, masks/); "
                                                 "with --check: a split folder."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (train/, valid/, split.jsonl)."),
        valid_fraction: float | None = typer.Option(None, "--valid-fraction",
                                                       help="Share of groups that go to valid/ (leak-free)."),
        valid_per_group: int | None = typer.Option(None, "--valid-per-group",
                                                      help="Reference mode: N composites of every document to "
                                                           "valid/ (leaks pages into both splits)."),
        group_by: str | None = typer.Option(None, "--group-by", help="document, background or both."),
        max_size: int | None = typer.Option(None, "--max-size", help="Longest side of written images (0: keep)."),
        seed: int | None = typer.Option(None, help="Split seed (default: the config's seed)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing split in --out."),
        check: bool = typer.Option(False, "--check", help="Report documents/backgrounds present in both splits "
                                                          "of DATASET; exit 1 when any leaks."),
        config: Path | None = ConfigOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Split a generated dataset into train/ and valid/ without leaking pages between them."""
        from docsynth import outputs
        from docsynth.dataset import split as split_mod

        if check:
            report = split_mod.summarise_split(dataset)
            leaks = len(report["leaked_documents"]) + len(report["leaked_backgrounds"])
            examples = (report["leaked_documents"] + report["leaked_backgrounds"])[:5]
            human = (f"{dataset}: train {report['train']}, valid {report['valid']}. "
                     + (f"LEAKS: {len(report['leaked_documents'])} documents and {len(report['leaked_backgrounds'])} "
                        f"backgrounds (e.g. {', '.join(examples)}). " if leaks else "")
                     + split_mod.describe_sharing(report))
            emit({**report, "leaks": leaks}, as_json, human)
            if leaks:
                raise typer.Exit(1)
            return
        if valid_fraction is not None and valid_per_group is not None:
            raise DocsynthError("--valid-fraction and --valid-per-group exclude each other; pass one")
        cfg = load_config(config, {"split.valid_fraction": valid_fraction, "split.valid_per_group": valid_per_group,
                                   "split.group_by": group_by, "split.max_size": max_size,
                                   "split.out": None if out is None else str(out), "split.seed": seed})
        sp = cfg.split
        if valid_fraction is not None:
            sp.valid_per_group = None  # an explicit fraction means leak-free mode
        outputs.check_folder(sp.out)
        outputs.refuse_overlap(sp.out, [dataset])  # --force clears train/ and valid/ there
        with progress_bar("split") as bar:
            summary = split_mod.split(
                dataset, sp.out, seed=sp.seed if sp.seed is not None else cfg.seed,
                valid_fraction=sp.valid_fraction, valid_per_group=sp.valid_per_group,
                group_by=sp.group_by, max_size=sp.max_size, force=force,
                progress=bar.advance, on_start=bar.start)
        leaks = len(summary["leaked_documents"]) + len(summary["leaked_backgrounds"])
        human = (f"split {dataset} into {summary['out']}: train {summary['train']}, valid {summary['valid']}, "
                 f"dropped {summary['dropped']}" + (f"; {leaks} groups in both splits (reference mode)"
                                                    if leaks else "; leak-free"))
        emit(summary, as_json, human)

    @app.command("train")
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
        from docsynth import outputs
        from docsynth.train.command import train

        overrides: dict[str, Any] = {
            "train.backbone": backbone, "train.epochs": epochs, "train.weights": weights,
            "train.out": None if out is None else str(out), "train.online": online,
            "train.eval_real": None if eval_real is None else str(eval_real),
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
