"""Online synthesis: a training stream that composites a fresh sample at every step.

Sample ``i`` of the stream is exactly sample ``base + i`` of ``docsynth generate`` with the
same config (same document choice, same ``sample_rng(seed, index)``, same compositor), only
kept in memory and converted to the training data contract:

- "image": float32 3 x S x S, RGB in [0, 1] normalised with ``mean``/``std`` (squashed, not
  letterboxed), "mask": int64 S x S (1 = page), "corners": float32 4 x 2 normalised
  (x / W, y / H; zeros when absent), "has_corners": bool.

The trainer cuts the stream into batches (:class:`docsynth.train.data.OnlineSteps`) and asks for
the item at each stream position.
:func:`open_online` and :func:`online_validation` build a run's stream and its validation set
from its config (``train.online_options`` applied to the ``generate`` section).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from docsynth.errors import DocsynthError
from docsynth.generate.stream import SampleStream
from docsynth.kinds import Sample
from docsynth.scan.model_contract import REFERENCE_MEAN, REFERENCE_STD
from docsynth.schema import RunConfig
from docsynth.train.data import ListDataset, augment_rng, online_augment, to_tensors

# A sample whose document cannot be read is replaced by the sample at index + k * _RETRY_STRIDE
# (k = 1, 2, ...): deterministic, and far outside any index a run reaches.
_RETRY_STRIDE = 1 << 40
_MAX_RETRIES = 8

Augment = Callable[[Sample, np.random.Generator], Sample]


def to_item(sample: Sample, size: int | tuple[int, int], mean=REFERENCE_MEAN, std=REFERENCE_STD) -> dict[str, Any]:
    """Convert a composite (BGR uint8, mask 0/255, pixel corners) to the training contract."""
    return to_tensors(sample.image, sample.mask, sample.corners, size, mean, std)


class OnlineDataset:
    """A stream of fresh composites for training, addressed by position.

    ``cfg`` is an effective docsynth config: documents, backgrounds and the compositor come
    from its ``generate`` section exactly as for ``docsynth generate``; ``cfg.seed`` seeds
    every sample. ``input_size`` defaults to ``train.input_size``.
    ``base`` offsets the index space (a run that wants images disjoint from an earlier
    dataset made with the same seed passes that dataset's size). ``augment`` is an optional
    ``(Sample, rng) -> Sample`` step applied before resizing, seeded per sample.
    """

    def __init__(self, cfg: RunConfig, input_size: int | tuple[int, int] | None = None, *,
                 base: int = 0, mean=None, std=None, augment: Augment | None = None):
        train = cfg.train
        size = input_size if input_size is not None else train.input_size
        if base < 0:
            raise DocsynthError("online dataset: base must not be negative")
        self.seed = int(cfg.seed)
        self.size = size
        self.base = int(base)
        self.mean = tuple(mean if mean is not None else train.mean or REFERENCE_MEAN)
        self.std = tuple(std if std is not None else train.std or REFERENCE_STD)
        self.augment = augment
        gen = cfg.generate  # train.online_options already applied (train.data.online_config)
        self.cfg = cfg
        # The stream is built once here and pickled to each worker (like generate's workers).
        self.stream = SampleStream.from_config(gen, self.seed)

    def sample_index(self, position: int) -> int:
        """The generate index behind stream position ``position``."""
        return self.base + position

    def composite(self, position: int) -> Sample:
        """The composite at stream ``position`` (after augmentation), in memory."""
        index = self.sample_index(position)
        for attempt in range(_MAX_RETRIES):
            sample = self.stream.sample(index + attempt * _RETRY_STRIDE)
            if sample is not None:
                if self.augment is not None:
                    # key (index, 1): independent of the compositor's stream, so adding an
                    # augmentation never changes the composite itself
                    sample = self.augment(sample, augment_rng(self.seed, index, 1))
                return sample
        raise DocsynthError(f"online dataset: no readable document for sample {index} "
                            f"after {_MAX_RETRIES} tries; check the documents")

    def item(self, position: int) -> dict[str, Any]:
        return to_item(self.composite(position), self.size, self.mean, self.std)


def online_config(cfg: RunConfig) -> RunConfig:
    """The config OnlineDataset reads: the generate section with train.online_options applied."""
    out = cfg.model_copy(deep=True)
    opts = cfg.train.online_options  # merged over its defaults when loaded: every key is there
    for key in ("documents", "backgrounds", "compositor", "compositor_options"):
        if opts.get(key) is not None:  # null: the generate section's
            setattr(out.generate, key, opts[key])
    return out


def open_online(cfg: RunConfig, *, for_validation: bool = False):
    """The online stream of this run (an :class:`OnlineDataset`)."""
    t = cfg.train
    return OnlineDataset(online_config(cfg), t.input_size, mean=t.mean, std=t.std,
                         base=int(t.online_options["base"]),
                         augment=None if for_validation else online_augment(t.greyscale_p))


# Validation samples of an online run come from far away in the index space, so the training
# stream (positions counted up from 0) never reaches them.
ONLINE_VALID_BASE = 1 << 36


def online_validation(cfg: RunConfig) -> ListDataset:
    count = int(cfg.train.online_options["valid_samples"])
    if count < 1:
        raise DocsynthError("train.online_options.valid_samples must be at least 1 without a validation folder")
    stream = open_online(cfg, for_validation=True)
    return ListDataset([stream.item(ONLINE_VALID_BASE + i) for i in range(count)])

