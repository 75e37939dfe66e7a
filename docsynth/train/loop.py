"""The training loop: one process, or one of N under ``torchrun`` (DistributedDataParallel).

What a run folder holds: ``last.pt`` (everything needed to continue), ``best.pt`` (the epoch
with the best validation IoU), ``metrics.jsonl`` (one row per epoch) and ``curves.png``.

Exact resume. A run stopped anywhere (Ctrl-C, a periodic ``last.pt`` after a crash) and
resumed gives the same weights as a run that never stopped, because everything that decides
the result is either saved or a pure function of (seed, epoch, position):

- data order: a seeded permutation per epoch (:class:`EpochSampler`), restarted at the saved
  micro-batch; augmentation: seeded per (epoch, sample); online samples: seeded per position;
- model, optimizer, LR schedule, AMP scaler, early-stopping state: saved;
- torch's global RNG (dropout): saved and restored. DataLoader worker seeds come from a
  per-epoch generator, so creating a loader mid-epoch does not disturb the global RNG.

Checkpoints are written only at optimizer-step boundaries. Ctrl-C (SIGINT) or SIGTERM sets a
flag checked there, so a stop never leaves a half-applied step. Under torchrun all ranks agree
on when to stop or save through one small all-reduce per step; rank 0 writes every file.
"""

from __future__ import annotations

import copy
import math
import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.io import write_jsonl
from docsynth.progress import Progress, progress_bar
from docsynth.scan.model_contract import save_checkpoint
from docsynth.scan.packaged import checkpoint_path
from docsynth.schema import RunConfig
from docsynth.train import data as data_mod
from docsynth.train import online as online_mod
from docsynth.train.curves import write_curves
from docsynth.train.losses import total_loss
from docsynth.train.metrics import mean_iou_per_image
from docsynth.train.realeval import RealEval
from docsynth.train.runtime import cpu_now, pick_device, rng_state, set_rng_state, setup_distributed
from docsynth.workers import one_opencv_thread, one_opencv_thread_while_forking

# ---------------------------------------------------------------------------------------------
# Run state (everything in last.pt besides model/optimizer/scheduler)
# ---------------------------------------------------------------------------------------------


@dataclass
class RunState:
    epoch: int = 0  # current epoch (0-based); == epochs when done
    micro: int = 0  # micro-batches done in the current epoch
    step: int = 0  # optimizer steps done in the whole run
    loss_sum: float = 0.0  # training loss sum / count of the current epoch so far
    loss_count: float = 0.0
    best_iou: float = -1.0
    best_epoch: int = 0
    since_best: int = 0
    stopped_early: bool = False
    wall_seconds: float = 0.0  # cumulative over all sessions of this run
    cpu_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base LR after ``step`` optimizer steps: linear warm-up, then
    constant or cosine decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "cosine":
        fraction = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * fraction))
    return 1.0


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------


class Trainer:
    """One run. ``on_step(trainer)`` is called after every optimizer step (tests use it to
    interrupt a run at a known point)."""

    def __init__(self, cfg: RunConfig, *, data: str | None, out: Path,
                 ckpt: dict[str, Any] | None = None, on_step: Callable[[Trainer], None] | None = None):
        self.cfg, self.t = cfg, cfg.train
        self.out, self.data, self.on_step = out, data, on_step
        t = self.t
        if t.threads:
            torch.set_num_threads(int(t.threads))
        self.device = pick_device(t.device)
        self.dist = setup_distributed(self.device)
        self.seed = int(t.seed)
        self.backbone = plugins.get("backbone", t.backbone)
        # Same initial weights on every rank and in every session (before any other draw).
        torch.manual_seed(self.seed)
        np.random.seed(self.seed % 2**32)
        random.seed(self.seed)
        weights = "none" if ckpt is not None else t.weights
        if weights == "packaged":  # fine-tune the packaged model (its architecture checked in train())
            weights = str(checkpoint_path())
        model = self.backbone.build(2, weights, options_mod.build(self.backbone, t.backbone_options,
                                                                  "train.backbone_options"))
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
        if t.bn_momentum is not None:
            # Eval-mode BatchNorm uses running statistics; with torchvision's MobileNetV3 momentum
            # (0.01) they lag hundreds of steps behind the weights, and validation looks broken.
            for module in model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.momentum = float(t.bn_momentum)
        self.amp = bool(t.amp) and self.device.type == "cuda"
        self.memory = torch.channels_last if t.channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=self.memory)
        self.net = self.model  # what forward runs through (DDP wrapper under torchrun)
        if self.dist.enabled:
            self.net = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        opt_cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(self.model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        self._open_data()
        self.total_steps = t.epochs * self.micro_batches // t.accumulate
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, self.total_steps, t.warmup_steps, t.schedule))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.state = RunState()
        if ckpt is not None:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            if ckpt.get("scaler"):
                self.scaler.load_state_dict(ckpt["scaler"])
            self.state = RunState(**ckpt["run_state"])
            set_rng_state(ckpt["rng"], self.device)
        self.real = None
        if t.eval_real and self.dist.main:
            self.real = RealEval(t.eval_real)
        self.meta = {"backbone": t.backbone, "backbone_options": dict(t.backbone_options),
                     "input_size": t.input_size, "mean": list(t.mean), "std": list(t.std),
                     "num_classes": 2, "outputs": getattr(self.backbone, "outputs", "mask")}
        self._stop = False  # set by Ctrl-C / SIGTERM on this rank
        self._halt = False  # all ranks agreed to stop after this epoch
        self._last_save = time.monotonic()

    # -- data ------------------------------------------------------------------------------

    def _open_data(self) -> None:
        t, d = self.t, self.dist
        B = t.batch_size
        if B % d.world:
            raise DocsynthError(f"train.batch_size: {B} is not divisible by {d.world} processes")
        self.local_batch = B // d.world
        if t.online:
            self.online = online_mod.open_online(self.cfg)
            per_epoch = int(t.online_options["samples_per_epoch"])
            micro = per_epoch // B
            if self.data:
                self.valid = self._valid_from(self.data)
            else:
                self.valid = online_mod.online_validation(self.cfg)
            self.train_set = None
        else:
            if not self.data:
                raise DocsynthError("train: DATA is required (a split folder or generated dataset) unless --online")
            self.train_set, self.valid = data_mod.open_fixed(self.data, t, self.cfg.split, self.seed)
            micro = len(self.train_set) // B
            if micro == 0:
                raise DocsynthError(f"{self.data}: {len(self.train_set)} training samples, fewer than "
                                    f"train.batch_size {B}; lower the batch size")
        micro = micro // t.accumulate * t.accumulate
        if t.steps_per_epoch:
            micro = min(micro, t.steps_per_epoch * t.accumulate)
        if micro < 1:
            raise DocsynthError("train: an epoch would have no optimizer step; raise samples_per_epoch "
                                "or lower batch_size/accumulate")
        self.micro_batches = micro
        self.weights = None
        if t.balanced and self.train_set is not None:
            self.weights = data_mod.balanced_weights(self.train_set.page_fractions())

    def _valid_from(self, folder: str) -> Any:
        path = Path(folder)
        t = self.t
        kw = dict(size=t.input_size, mean=t.mean, std=t.std, seed=self.seed)
        root = path / "valid" if (path / "valid").is_dir() else path
        return data_mod.FolderDataset.from_folder(root, **kw)

    def _loader(self, epoch: int) -> DataLoader:
        t = self.t
        gen = torch.Generator()
        gen.manual_seed(self.seed * 1000 + epoch)
        common: dict[str, Any] = dict(num_workers=t.workers, pin_memory=self.device.type == "cuda", generator=gen,
                                      worker_init_fn=one_opencv_thread if t.workers else None)
        if self.train_set is None:
            stream = data_mod.OnlineSteps(self.online, first=epoch * self.micro_batches * t.batch_size,
                                          batch_size=t.batch_size, micro_batches=self.micro_batches,
                                          start=self.state.micro, num_replicas=self.dist.world, rank=self.dist.rank)
            return DataLoader(stream, batch_size=self.local_batch, **common)
        sampler = data_mod.EpochSampler(self.train_set, batch_size=t.batch_size, micro_batches=self.micro_batches,
                                        seed=self.seed, num_replicas=self.dist.world, rank=self.dist.rank,
                                        weights=self.weights)
        sampler.set_epoch(epoch)
        sampler.set_start(self.state.micro)
        return DataLoader(self.train_set, batch_size=self.local_batch, sampler=sampler, **common)

    # -- signals ---------------------------------------------------------------------------

    def _request_stop(self, signum, frame) -> None:
        self._stop = True
        # A second Ctrl-C stops at once (default handler).
        signal.signal(signum, self._old_handlers.get(signum, signal.SIG_DFL))

    def _install_signals(self) -> None:
        self._old_handlers = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old_handlers[sig] = signal.signal(sig, self._request_stop)
        except ValueError:  # not the main thread: no handlers, Ctrl-C raises as usual
            self._old_handlers = {}

    def _restore_signals(self) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)

    # -- one optimizer step's bookkeeping --------------------------------------------------

    def _agree(self, loss_sum: float, count: int) -> tuple[bool, bool, float, float]:
        """All ranks: (stop, save now, global loss sum, global count) for the step just done."""
        minutes = self.t.checkpoint_minutes
        save = minutes > 0 and time.monotonic() - self._last_save >= minutes * 60
        flags = torch.tensor([float(self._stop), float(save), loss_sum, float(count)], dtype=torch.float64)
        if self.dist.enabled:
            # gloo reduces CPU tensors; nccl needs them on the GPU
            on = flags.to(self.device) if self.device.type == "cuda" else flags
            dist.all_reduce(on)
            flags = on.cpu()
        return bool(flags[0] > 0), bool(flags[1] > 0), float(flags[2]), float(flags[3])

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        t, st = self.t, self.state
        self._install_signals()
        session_wall, session_cpu = time.monotonic(), cpu_now()
        base_wall, base_cpu = st.wall_seconds, st.cpu_seconds

        def clock() -> None:
            st.wall_seconds = base_wall + time.monotonic() - session_wall
            st.cpu_seconds = base_cpu + cpu_now() - session_cpu

        interrupted = False
        try:
            with (progress_bar("train") if self.dist.main else _no_bar()) as bar:
                bar.start(t.epochs * self.micro_batches, st.epoch * self.micro_batches + st.micro)
                while st.epoch < t.epochs and not st.stopped_early:
                    epoch_t0 = time.monotonic()
                    if self._train_epoch(bar, clock):
                        interrupted = True
                        break
                    row = self._end_epoch(time.monotonic() - epoch_t0, clock)
                    if self.dist.main:
                        self._log(row)
                    # a stop requested during the last step or the validation (last.pt is saved)
                    if self._halt or self._agree(0.0, 0)[0]:
                        interrupted = st.epoch < t.epochs and not st.stopped_early
                        break
        finally:
            self._restore_signals()
        return self.summary(interrupted)

    def _train_epoch(self, bar: Any, clock: Callable[[], None]) -> bool:
        """Train until the epoch ends (False) or a stop was requested (True, last.pt saved)."""
        t, st = self.t, self.state
        accum = t.accumulate
        self.net.train()
        window_sum, window_n = 0.0, 0
        with one_opencv_thread_while_forking():  # data workers render on one core each
            batches = iter(self._loader(st.epoch))
        for batch in batches:
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            image = batch["image"].to(memory_format=self.memory)
            last_micro = (st.micro + 1) % accum == 0
            sync = nullcontext() if last_micro or not self.dist.enabled else self.net.no_sync()
            with sync:
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                    outputs = self.net(image)
                loss, _ = total_loss(outputs, batch, t)
                self.scaler.scale(loss / accum).backward()
            n = int(image.shape[0])
            window_sum += float(loss.detach()) * n
            window_n += n
            st.micro += 1
            bar.advance()
            if not last_micro:
                continue
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self.scheduler.step()
            st.step += 1
            if self.on_step is not None:
                self.on_step(self)
            stop, save, loss_sum, count = self._agree(window_sum, window_n)
            st.loss_sum += loss_sum
            st.loss_count += count
            window_sum, window_n = 0.0, 0
            if st.micro >= self.micro_batches:
                # Epoch done: validation and last.pt follow; a stop request is honoured after them.
                self._halt = stop
                return False
            if stop or save:
                clock()
                self._save("last.pt")
                self._last_save = time.monotonic()
                if stop:
                    return True
        return False

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        """(mean loss, mean per-image IoU) over the whole validation set, all ranks together."""
        model = self.model
        was = model.training
        model.eval()
        gen = torch.Generator()
        gen.manual_seed(self.seed)
        loader = DataLoader(self.valid, batch_size=self.local_batch, generator=gen,
                            sampler=data_mod.ShardSampler(len(self.valid), self.dist.world, self.dist.rank),
                            num_workers=min(self.t.workers, 2), pin_memory=self.device.type == "cuda")
        sums = torch.zeros(3, dtype=torch.float64)
        for batch in loader:
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                outputs = model(batch["image"].to(memory_format=self.memory))
            outputs = {k: v for k, v in outputs.items() if k != "aux"}
            loss, _ = total_loss(outputs, batch, self.t)
            n = batch["image"].shape[0]
            sums += torch.tensor([float(loss) * n, float(mean_iou_per_image(outputs["out"], batch["mask"]).sum()), n],
                                 dtype=torch.float64)
        if self.dist.enabled:
            on = sums.to(self.device) if self.device.type == "cuda" else sums
            dist.all_reduce(on)
            sums = on.cpu()
        model.train(was)
        return float(sums[0] / sums[2]), float(sums[1] / sums[2])

    def _end_epoch(self, seconds: float, clock: Callable[[], None]) -> dict[str, Any]:
        t, st = self.t, self.state
        valid_loss, valid_iou = self.validate()
        row: dict[str, Any] = {
            "epoch": st.epoch + 1, "step": st.step,
            "train_loss": round(st.loss_sum / max(st.loss_count, 1), 6),
            "valid_loss": round(valid_loss, 6), "valid_iou": round(valid_iou, 6),
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        if self.real is not None:
            real = self.real.evaluate(self.model, self.meta, self.device)
            row["real_iou"] = real["real_iou"]
            row["real_jaccard"] = real["real_jaccard"]
            if "real_corner_iou" in real:
                row["real_corner_iou"] = real["real_corner_iou"]
        clock()
        row.update({"seconds": round(seconds, 3), "train_wall_seconds": round(st.wall_seconds, 3),
                    "train_cpu_seconds": round(st.cpu_seconds, 3)})
        st.history.append(row)
        st.epoch += 1
        st.micro = 0
        st.loss_sum = st.loss_count = 0.0
        improved = valid_iou > st.best_iou
        if improved:
            st.best_iou, st.best_epoch, st.since_best = valid_iou, row["epoch"], 0
        else:
            st.since_best += 1
        if t.early_stopping and st.since_best >= t.early_stopping:
            st.stopped_early = True
        if self.dist.main:
            write_jsonl(self.out / "metrics.jsonl", st.history)
            write_curves(self.out / "curves.png", st.history)
            if improved:
                self._save("best.pt")
        self._save("last.pt")
        self._last_save = time.monotonic()
        return row

    def _save(self, name: str) -> None:
        if not self.dist.main:
            return
        st = self.state
        save_checkpoint(self.out / name, self.model, self.meta,
                        optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                        scaler=self.scaler.state_dict() if self.amp else None, rng=rng_state(self.device),
                        config=self.cfg.model_dump(), data=self.data, run_state=copy.deepcopy(st.__dict__),
                        metrics=st.history[-1] if st.history else None, epoch=st.epoch, step=st.step)

    def _log(self, row: dict[str, Any]) -> None:
        real = (f" real IoU {row['real_iou']:.4f} real Jaccard {row['real_jaccard']:.4f}"
                if "real_iou" in row else "")
        Console(stderr=True).print(
            f"epoch {row['epoch']}/{self.t.epochs}: train loss {row['train_loss']:.4f}, valid loss "
            f"{row['valid_loss']:.4f}, valid IoU {row['valid_iou']:.4f}{real} ({row['seconds']:.1f} s)",
            highlight=False, soft_wrap=True)

    def summary(self, interrupted: bool) -> dict[str, Any]:
        st = self.state
        last = st.history[-1] if st.history else {}
        return {"run": str(self.out), "backbone": self.t.backbone, "epochs_done": st.epoch,
                "epochs": self.t.epochs, "steps": st.step, "interrupted": interrupted,
                "stopped_early": st.stopped_early, "best_valid_iou": round(st.best_iou, 6) if st.history else None,
                "best_epoch": st.best_epoch or None, "real_iou": last.get("real_iou"), "real_jaccard": last.get("real_jaccard"),
                "last": last, "train_wall_seconds": round(st.wall_seconds, 3),
                "train_cpu_seconds": round(st.cpu_seconds, 3),
                "best": str(self.out / "best.pt"), "last_checkpoint": str(self.out / "last.pt"),
                "world_size": self.dist.world, "device": str(self.device)}


@contextmanager
def _no_bar() -> Iterator[Progress]:
    """Ranks other than 0 stay quiet."""
    yield Progress()
