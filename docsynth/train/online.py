"""Online synthesis: a training stream that composites a fresh sample at every step.

Sample ``i`` of the stream is exactly sample ``base + i`` of ``docsynth generate`` with the
same config (same document choice, same ``sample_rng(seed, index)``, same compositor), only
kept in memory and converted to the training data contract:

- "image": float32 3 x S x S, RGB in [0, 1] normalised with ``mean``/``std`` (squashed, not
  letterboxed), "mask": int64 S x S (1 = page), "corners": float32 4 x 2 normalised
  (x / W, y / H; zeros when absent), "has_corners": bool.

Why chunks: a DataLoader with several workers takes whole batches from each worker in turn
(worker 0, 1, ..., 0, 1, ...). Giving worker ``k`` the chunks ``k, k + K, k + 2K, ...`` of
``chunk`` consecutive indices therefore yields the same batches in the same order for any
worker count ``K``, as long as ``chunk`` equals the DataLoader's batch size.

Resuming: ``start`` is the global position in the stream (steps done x batch size); the
stream from there is the same as the one an uninterrupted run would have seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np

from docsynth.errors import DocsynthError
from docsynth.generate import Context, render_sample
from docsynth.inputs import BackgroundPool, DocumentPool
from docsynth.kinds import Sample
from docsynth.models import REFERENCE_MEAN, REFERENCE_STD

# A sample whose document cannot be read is replaced by the sample at index + k * _RETRY_STRIDE
# (k = 1, 2, ...): deterministic, and far outside any index a run reaches.
_RETRY_STRIDE = 1 << 40
_MAX_RETRIES = 8

Augment = Callable[[Sample, np.random.Generator], Sample]


def augment_rng(seed: int, index: int) -> np.random.Generator:
    """Randomness for train-time augmentation of sample ``index``; independent of the
    compositor's stream so adding an augmentation never changes the composite itself."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index, 1])))


def to_item(sample: Sample, size: int | tuple[int, int], mean=REFERENCE_MEAN, std=REFERENCE_STD) -> dict[str, Any]:
    """Convert a composite (BGR uint8, mask 0/255, pixel corners) to the training contract."""
    import torch

    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    src_h, src_w = sample.image.shape[:2]
    small = cv2.resize(sample.image, (w, h), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) * (1 / 255)
    rgb = (rgb - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    # Area-average then threshold: the small mask is the majority label of each cell.
    mask = cv2.resize(sample.mask, (w, h), interpolation=cv2.INTER_AREA) >= 128
    if sample.corners is not None:
        corners = np.asarray(sample.corners, np.float32) / np.array([src_w, src_h], np.float32)
        has = True
    else:
        corners, has = np.zeros((4, 2), np.float32), False
    return {
        "image": torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))),
        "mask": torch.from_numpy(mask.astype(np.int64)),
        "corners": torch.from_numpy(corners),
        "has_corners": torch.tensor(has),
    }


def _iterable_base():
    import torch.utils.data

    return torch.utils.data.IterableDataset


class OnlineDataset(_iterable_base()):  # type: ignore[misc]
    """Endless (or ``length``-long) stream of fresh composites for training.

    ``cfg`` is an effective docsynth config: documents, backgrounds and the compositor come
    from its ``generate`` section exactly as for ``docsynth generate``; ``cfg["seed"]`` seeds
    every sample. ``input_size`` defaults to ``train.input_size`` when the config has one.
    ``length`` is the run's total number of samples (None: endless); ``start`` the position
    to begin at (see :meth:`resume`). ``base`` offsets the index space (a run that wants images disjoint from an earlier
    dataset made with the same seed passes that dataset's size). ``augment`` is an optional
    ``(Sample, rng) -> Sample`` step applied before resizing, seeded per sample.
    """

    def __init__(self, cfg: dict[str, Any], input_size: int | tuple[int, int] | None = None, *,
                 chunk: int = 1, start: int = 0, length: int | None = None, base: int = 0,
                 mean=None, std=None, augment: Augment | None = None):
        super().__init__()
        train = cfg.get("train") or {}
        size = input_size if input_size is not None else train.get("input_size")
        if size is None:
            raise DocsynthError("train.input_size: not set; online training needs an input size")
        if chunk < 1:
            raise DocsynthError("online dataset: chunk (the batch size) must be at least 1")
        if start < 0 or base < 0 or (length is not None and length < 0):
            raise DocsynthError("online dataset: start, base and length must not be negative")
        self.seed = int(cfg["seed"])
        self.size = size
        self.chunk = int(chunk)
        self.start = int(start)
        self.length = length
        self.base = int(base)
        self.mean = tuple(mean if mean is not None else train.get("mean") or REFERENCE_MEAN)
        self.std = tuple(std if std is not None else train.get("std") or REFERENCE_STD)
        self.augment = augment
        gen = dict(cfg["generate"])
        # train.online_options may point the stream at other inputs than generate's.
        online = train.get("online_options") or {}
        for key in ("documents", "backgrounds", "compositor"):
            if online.get(key):
                gen[key] = online[key]
        if online.get("compositor_options") is not None:
            gen["compositor_options"] = online["compositor_options"]
        cfg = {**cfg, "generate": gen}
        self.cfg = cfg
        # Pools are listed once here and pickled to each worker (like generate's workers).
        self.documents = DocumentPool.from_config(gen, self.seed)
        self.backgrounds = BackgroundPool.from_config(gen, self.seed)
        self._ctx = Context(cfg=cfg, out=Path("."), documents=self.documents, backgrounds=self.backgrounds)

    def resume(self, position: int) -> "OnlineDataset":
        """Continue the stream at global ``position`` (samples already consumed)."""
        if position < 0:
            raise DocsynthError("online dataset: resume position must not be negative")
        self.start = int(position)
        return self

    def sample_index(self, position: int) -> int:
        """The generate index behind stream position ``position``."""
        return self.base + position

    def composite(self, position: int) -> Sample:
        """The composite at stream ``position`` (after augmentation), in memory."""
        index = self.sample_index(position)
        for attempt in range(_MAX_RETRIES):
            made = render_sample(self._ctx, index + attempt * _RETRY_STRIDE)
            if made is not None:
                sample = made[0]
                if self.augment is not None:
                    sample = self.augment(sample, augment_rng(self.seed, index))
                return sample
        raise DocsynthError(f"online dataset: no readable document for sample {index} "
                            f"after {_MAX_RETRIES} tries; check the documents")

    def item(self, position: int) -> dict[str, Any]:
        return to_item(self.composite(position), self.size, self.mean, self.std)

    def positions(self, worker: int = 0, workers: int = 1) -> Iterator[int]:
        """Stream positions handled by ``worker`` of ``workers``: every ``workers``-th chunk."""
        end = self.length  # the run's total: resuming does not move its end
        chunk_no = worker
        while True:
            first = self.start + chunk_no * self.chunk
            for pos in range(first, first + self.chunk):
                if end is not None and pos >= end:
                    return
                yield pos
            chunk_no += workers

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import torch.utils.data

        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        for pos in self.positions(worker, workers):
            yield self.item(pos)

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("an endless OnlineDataset has no length")
        return max(0, self.length - self.start)
