"""Fixed training data: a split folder or a generated dataset, as tensors of the training contract.

Every item is a dict (the training contract, as :mod:`docsynth.scan.model_contract` documents it): "image" float32 3 x S x S (RGB, normalised,
squashed to S x S), "mask" int64 S x S (1 = page), "corners" float32 4 x 2 normalised to the
image (zeros when absent), "has_corners" bool.

Why items are keyed by ``(epoch, index)``: the augmentation of sample ``index`` in epoch
``epoch`` draws from ``SeedSequence([seed, epoch, index])``, so the data a run sees depends
only on the config and seed -- not on the worker count, and not on where a run was stopped
and resumed. :class:`EpochSampler` produces those keys in a seeded order per epoch and can
start in the middle of an epoch.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, IterableDataset

from docsynth.dataset import split as split_mod
from docsynth.errors import DocsynthError
from docsynth.formats.manifest import read_file_rows
from docsynth.geometry import quad_area
from docsynth.io import read_image, read_mask
from docsynth.kinds import Sample
from docsynth.schema import SplitSection, TrainSection


def augment_rng(seed: int, *key: int) -> np.random.Generator:
    """Randomness for train-time augmentation: ``(epoch, index)`` for a fixed dataset's sample,
    ``(index, 1)`` for an online one (:meth:`docsynth.train.online.OnlineDataset.composite`)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


def greyscale(image_bgr: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """The reference recipe's only augmentation: a greyscale copy with probability ``p``."""
    if p > 0 and rng.random() < p:
        grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    return image_bgr


def greyscale_sample(sample: Sample, rng: np.random.Generator, p: float) -> Sample:
    """The same step for online composites (``OnlineDataset``'s ``augment`` hook)."""
    sample.image = greyscale(sample.image, rng, p)
    return sample


def online_augment(p: float):
    return functools.partial(greyscale_sample, p=p)


def to_tensors(image_bgr: np.ndarray, mask: np.ndarray, corners: np.ndarray | None,
               size: int | tuple[int, int], mean, std) -> dict[str, torch.Tensor]:
    """Convert one sample at any size (BGR uint8, mask 0/255, pixel corners) to the training
    contract at ``size`` (S, or (height, width)); the only conversion, fixed and online."""
    h, w = mask.shape[:2]
    out_h, out_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    small = cv2.resize(image_bgr, (out_w, out_h), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) * (1 / 255)
    normalised = (rgb - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    # Area-average then threshold: the small mask is the majority label of each cell.
    small_mask = cv2.resize(mask, (out_w, out_h), interpolation=cv2.INTER_AREA) >= 128
    has = corners is not None
    norm = np.asarray(corners, np.float32) / np.array([w, h], np.float32) if has else np.zeros((4, 2), np.float32)
    return {"image": torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1))),
            "mask": torch.from_numpy(small_mask.astype(np.int64)),
            "corners": torch.from_numpy(norm), "has_corners": torch.tensor(has)}


class FolderDataset(Dataset):
    """Samples listed by a dataset's manifest.jsonl (or images/ + masks/), loaded on demand."""

    def __init__(self, root: str | Path, rows: list[dict[str, Any]], *, size: int, mean, std,
                 seed: int, greyscale_p: float = 0.0):
        self.root = Path(root)
        self.rows = rows
        self.size, self.mean, self.std = int(size), tuple(mean), tuple(std)
        # One stat per file now, not a traceback from a loader worker in the middle of an epoch.
        missing = [self.root / row[key] for row in rows for key in ("image", "mask")
                   if not (self.root / row[key]).is_file()]
        if missing:
            raise DocsynthError(f"{missing[0]}: listed in {self.root / 'manifest.jsonl'} but missing"
                                + (f" ({len(missing)} files missing)" if len(missing) > 1 else "")
                                + "; restore the files, or make the dataset again")
        self.seed, self.greyscale_p = int(seed), float(greyscale_p)

    @classmethod
    def from_folder(cls, root: str | Path, **kw: Any) -> FolderDataset:
        return cls(root, read_file_rows(root), **kw)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        row = self.rows[index]
        image = read_image(self.root / row["image"])
        mask = read_mask(self.root / row["mask"])
        if mask.shape != image.shape[:2]:
            raise DocsynthError(f"{self.root / row['mask']}: size differs from its image")
        if self.greyscale_p > 0:
            image = greyscale(image, augment_rng(self.seed, epoch, index), self.greyscale_p)
        corners = row.get("corners")
        return to_tensors(image, mask, None if corners is None else np.asarray(corners, np.float64),
                          self.size, self.mean, self.std)

    def page_fractions(self) -> np.ndarray:
        """Share of each image covered by the page (from the manifest corners, else the mask)."""
        out = np.zeros(len(self.rows))
        for i, row in enumerate(self.rows):
            if row.get("corners") is not None and row.get("width") and row.get("height"):
                out[i] = quad_area(np.asarray(row["corners"])) / (row["width"] * row["height"])
            elif "negative" in (row.get("flags") or []):
                out[i] = 0.0
            else:
                out[i] = float((read_mask(self.root / row["mask"]) > 0).mean())
        return out


def balanced_weights(page_fractions: np.ndarray) -> np.ndarray:
    """Sampling weights that draw each page-coverage bin (none, <10 %, 10-30 %, 30-60 %, more)
    equally often, so rare cases (negatives, small pages) are seen as often as common ones."""
    bins = np.digitize(page_fractions, [1e-6, 0.1, 0.3, 0.6])
    counts = np.bincount(bins, minlength=5).astype(np.float64)
    return 1.0 / counts[bins]


def open_fixed(data: str | Path, train_cfg: TrainSection, split_cfg: SplitSection,
               seed: int) -> tuple[FolderDataset, FolderDataset]:
    """(train, valid) datasets from a split folder, or from a generated dataset split in
    memory, leak-free by document (``train.valid_fraction``)."""
    data = Path(data)
    kw: dict[str, Any] = dict(size=train_cfg.input_size, mean=train_cfg.mean, std=train_cfg.std, seed=seed)
    if (data / "train").is_dir() and (data / "valid").is_dir():
        train = FolderDataset.from_folder(data / "train", greyscale_p=train_cfg.greyscale_p, **kw)
        valid = FolderDataset.from_folder(data / "valid", **kw)
    else:
        rows = read_file_rows(data)
        group_by = split_cfg.group_by
        labels = split_mod.assign(rows, seed=seed, valid_fraction=train_cfg.valid_fraction, group_by=group_by)
        train = FolderDataset(data, [r for r, side in zip(rows, labels, strict=True) if side == "train"],
                              greyscale_p=train_cfg.greyscale_p, **kw)
        valid = FolderDataset(data, [r for r, side in zip(rows, labels, strict=True) if side == "valid"], **kw)
    if len(train) == 0:
        raise DocsynthError(f"{data}: no training samples")
    if len(valid) == 0:
        raise DocsynthError(f"{data}: no validation samples; split with a larger --valid-fraction")
    return train, valid


class EpochSampler(DistributedSampler):
    """A DistributedSampler over ``(epoch, index)`` keys with exact mid-epoch restarts.

    The epoch's global order is a seeded permutation (or, when ``weights`` are given, a seeded
    draw with replacement), cut to ``micro_batches`` x ``batch_size``. Rank ``r`` of ``W`` takes
    every W-th key from ``r`` (DistributedSampler's rule), so global batch ``b`` of a W-process
    run holds the same samples as batch ``b`` of a single-process run with the same global
    batch. ``start`` skips the micro-batches already done in this epoch."""

    def __init__(self, dataset: Dataset, *, batch_size: int, micro_batches: int, seed: int,
                 num_replicas: int = 1, rank: int = 0, weights: np.ndarray | None = None):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                         drop_last=True)
        if batch_size % num_replicas:
            raise DocsynthError(f"train.batch_size: {batch_size} is not divisible by {num_replicas} processes")
        self.batch_size, self.micro_batches = batch_size, micro_batches
        self.local_batch = batch_size // num_replicas
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        self.start = 0
        self.num_samples = micro_batches * self.local_batch
        self.total_size = micro_batches * batch_size

    def set_start(self, micro_batch: int) -> None:
        self.start = micro_batch

    def global_order(self) -> list[int]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        n = len(self.dataset)  # type: ignore[arg-type]  # our datasets are sized
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.total_size, replacement=True, generator=g)
        else:
            order = torch.randperm(n, generator=g)
        return order[: self.total_size].tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        mine = self.global_order()[self.rank::self.num_replicas]
        for index in mine[self.start * self.local_batch:]:
            yield (self.epoch, index)

    def __len__(self) -> int:
        return (self.micro_batches - self.start) * self.local_batch


class ShardSampler(torch.utils.data.Sampler):
    """Validation order: every sample once, rank ``r`` takes indices r, r + W, ..."""

    def __init__(self, n: int, num_replicas: int = 1, rank: int = 0):
        self.keys = [(0, i) for i in range(rank, n, num_replicas)]

    def __iter__(self):
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


class OnlineSteps(IterableDataset):
    """One epoch of an online stream, cut into the batches of one rank.

    Global batch ``b`` covers stream positions ``first + b * B ... first + (b + 1) * B - 1``;
    rank ``r`` takes its ``B / W`` consecutive positions of each, so a W-process run sees the
    same samples per global batch as a single-process one. DataLoader workers take whole
    batches in turn (worker k: batches k, k + K, ...), which is the order the DataLoader
    returns them in, so the stream does not depend on the worker count either."""

    def __init__(self, online: Any, *, first: int, batch_size: int, micro_batches: int, start: int = 0,
                 num_replicas: int = 1, rank: int = 0):
        super().__init__()
        self.online, self.first = online, first
        self.batch_size, self.micro_batches, self.start = batch_size, micro_batches, start
        self.local_batch = batch_size // num_replicas
        self.rank = rank

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        for b in range(self.start + worker, self.micro_batches, workers):
            base = self.first + b * self.batch_size + self.rank * self.local_batch
            for pos in range(base, base + self.local_batch):
                yield self.online.item(pos)

    def __len__(self) -> int:
        return (self.micro_batches - self.start) * self.local_batch


class ListDataset(Dataset):
    def __init__(self, items: list[dict[str, torch.Tensor]]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key):
        return self.items[key[1] if isinstance(key, tuple) else key]
