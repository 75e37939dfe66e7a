"""One export as every exporter receives it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Job:
    model: Any  # the torch model, in eval mode
    keys: list[str]  # its inference outputs, in order ("out", and "corners" for corner models)
    x0: np.ndarray  # a preprocessed input (1 x 3 x H x W) to trace with
    path: Path  # where to write the file
    meta: dict[str, Any]  # travels inside the file (backbone, input size, mean, std, precision, source)
    precision: str = "fp32"
    opset: int = 17  # ONNX
    calibration: list[np.ndarray] | None = None  # int8: preprocessed calibration composites
    shapes: dict[str, list[int]] | None = None  # output key -> shape PyTorch gives (Core ML's check)
