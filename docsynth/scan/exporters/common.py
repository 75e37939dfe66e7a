"""What every exporter shares: the model with only its inference outputs, and quiet converters."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from typing import Any


def wrapper(model: Any, keys: list[str], as_dict: bool) -> Any:
    import torch  # torch: export-model's modules load at CLI start

    class Exported(torch.nn.Module):
        """The model with only its inference outputs, as a tuple (ONNX) or a dict (TorchScript)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, image):
            out = self.model(image)
            if as_dict:
                return {k: out[k] for k in keys}
            return tuple(out[k] for k in keys)

    return Exported().eval()


@contextlib.contextmanager
def native_chatter_muted():
    """While LiteRT/TensorFlow load, convert and start an interpreter they print progress trees
    and info logs from Python and native code. stdout must stay clean for ``--json``, so both
    file descriptors 1 and 2 go to a scratch file for the duration; Python exceptions still
    carry their message."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    yield
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def quiet_litert() -> None:
    """Before LiteRT is imported: no progress tree from the converter, no TensorFlow info logs."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
