"""Export a checkpoint to ONNX or TorchScript, checked against PyTorch.

The exported graph takes ``image`` (N x 3 x H x W, preprocessed as in :mod:`docsynth.models`)
and returns the model's inference outputs under their dict keys: ``out`` and, for corner
models, ``corners`` (``aux`` is a training-only head and is dropped). The checkpoint's meta
(backbone, input size, mean, std) travels inside the file (ONNX metadata ``docsynth``,
TorchScript extra file ``docsynth.json``), so ``docsynth scan model.onnx PHOTOS`` needs nothing
else. Before the file is put in place, the exported model runs on the same inputs as the
PyTorch model and every output must match within ``atol`` (ONNX Runtime for ONNX).

ONNX uses PyTorch's TorchScript-based exporter (``dynamo=False``): the newer exporter needs the
``onnxscript`` package, which the project does not depend on.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from docsynth.errors import DocsynthError

META_KEYS = ("backbone", "backbone_options", "num_classes", "input_size", "mean", "std")
FORMATS = ("onnx", "torchscript")


def _inference_keys(model: Any, x: Any) -> list[str]:
    import torch

    with torch.inference_mode():
        out = model(x)
    if not isinstance(out, dict) or "out" not in out:
        raise DocsynthError("model output is not a dict with 'out'; the backbone breaks the model contract")
    return [k for k in out if k != "aux"]


def _wrapper(model: Any, keys: list[str], as_dict: bool) -> Any:
    import torch

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


def export_model(checkpoint: str | Path, fmt: str, out: str | Path, force: bool = False,
                 atol: float = 1e-3, opset: int = 17) -> dict[str, Any]:
    """Write ``out`` and return a summary with the largest difference found by the check."""
    import torch

    from docsynth.io import atomic_write_bytes
    from docsynth.models import input_hw, preprocess
    from docsynth.models import load_model

    if fmt not in FORMATS:
        raise DocsynthError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and not force:
        raise DocsynthError(f"{out}: exists; pass --force to replace it")
    model, ckpt = load_model(checkpoint)
    meta = {k: ckpt[k] for k in META_KEYS if k in ckpt}
    h, w = input_hw(meta)
    # check inputs: a fixed-seed random photo (preprocessed like any photo) and a random tensor
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (h + 37, w + 53, 3), dtype=np.uint8)
    inputs = [preprocess(photo, meta), rng.standard_normal((1, 3, h, w)).astype(np.float32)]
    x0 = torch.from_numpy(inputs[0])
    keys = _inference_keys(model, x0)
    with torch.inference_mode():
        expected = [{k: v.float().numpy() for k, v in model(torch.from_numpy(x)).items() if k != "aux"}
                    for x in inputs]

    with tempfile.TemporaryDirectory() as tmp:
        tmp_file = Path(tmp) / f"model.{fmt}"
        if fmt == "onnx":
            got = _export_onnx(model, keys, x0, tmp_file, meta, inputs, opset)
        else:
            got = _export_torchscript(model, keys, x0, tmp_file, meta, inputs)
        diff = max(float(np.abs(got[i][k] - expected[i][k]).max()) for i in range(len(inputs)) for k in keys)
        if not diff <= atol:
            raise DocsynthError(f"{checkpoint}: exported {fmt} model differs from PyTorch by {diff:.2g} "
                                f"(> {atol}); not written")
        atomic_write_bytes(out, tmp_file.read_bytes())
    return {"out": str(out), "format": fmt, "outputs": keys, "input_size": [h, w],
            "max_abs_diff": diff, "atol": atol, "bytes": out.stat().st_size}


def _export_onnx(model, keys, x0, path: Path, meta, inputs, opset: int) -> list[dict[str, np.ndarray]]:
    import onnx
    import torch

    try:
        import onnxruntime as ort
    except ImportError:
        raise DocsynthError("ONNX export needs onnxruntime for its check; pip install onnxruntime") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation
        torch.onnx.export(_wrapper(model, keys, as_dict=False), (x0,), str(path), dynamo=False,
                          input_names=["image"], output_names=keys, opset_version=opset,
                          dynamic_axes={"image": {0: "batch"}, **{k: {0: "batch"} for k in keys}})
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "docsynth", json.dumps(meta)
    onnx.save(proto, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(None, {"image": x}))) for x in inputs]


def _export_torchscript(model, keys, x0, path: Path, meta, inputs) -> list[dict[str, np.ndarray]]:
    import torch

    from docsynth.scan import TORCHSCRIPT_META

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit announces its deprecation
        traced = torch.jit.trace(_wrapper(model, keys, as_dict=True), x0, strict=False)
        torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_META: json.dumps(meta)})
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return [{k: v.float().numpy() for k, v in loaded(torch.from_numpy(x)).items()} for x in inputs]
