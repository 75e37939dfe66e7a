"""TorchScript (fp32): the traced model, its meta as an extra file."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable

import numpy as np

from docsynth.scan.exporters.common import wrapper
from docsynth.scan.exporters.job import Job
from docsynth.scan.scanner import TORCHSCRIPT_META


def export(job: Job) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """Write ``job.path`` (traced, the meta as an extra file); returns a runner on it."""
    import torch  # deferred: docsynth imports without torch

    model, keys, x0, path, meta = job.model, job.keys, job.x0, job.path, job.meta

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit announces its deprecation
        traced = torch.jit.trace(wrapper(model, keys, as_dict=True), torch.from_numpy(x0), strict=False)
        torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_META: json.dumps(meta, sort_keys=True)})
        loaded = torch.jit.load(str(path), map_location="cpu")

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            return {k: v.float().numpy() for k, v in loaded(torch.from_numpy(x)).items()}

    return run
