"""ONNX (fp32, fp16, int8), run with ONNX Runtime; PyTorch's TorchScript-based exporter
(``dynamo=False``: the newer one needs ``onnxscript``, which the project does not depend on)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from docsynth.errors import DocsynthError
from docsynth.scan.exporters.common import wrapper
from docsynth.scan.exporters.job import Job
from docsynth.scan.scanner import OnnxBackend

# Operators a mobile runtime or NPU may lack, or that need shapes at run time.
FORBIDDEN_ONNX_OPS = {"Einsum", "Loop", "If", "Scan", "NonZero", "NonMaxSuppression"}


def export(job: Job) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """Write ``job.path``; returns a runner ``x -> {key: output}`` on ONNX Runtime."""
    model, keys, x0, path, meta, precision = job.model, job.keys, job.x0, job.path, job.meta, job.precision
    # optional extra [export] (onnx), and torch: loaded by this export only
    import onnx
    import torch

    try:
        # a probe: the check runs the file on ONNX Runtime
        import onnxruntime  # noqa: F401
    except ImportError:
        raise DocsynthError("ONNX export needs onnxruntime for its check; pip install onnxruntime") from None
    fp32 = path.with_name("fp32.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation
        # no dynamic_axes: every shape is fixed (batch 1), as mobile runtimes and NPUs want
        torch.onnx.export(wrapper(model, keys, as_dict=False), (torch.from_numpy(x0),), str(fp32), dynamo=False,
                          input_names=["image"], output_names=keys, opset_version=job.opset)
    proto = onnx.load(str(fp32))
    check_onnx_graph(proto, fp32)
    if precision == "fp16":
        proto = _to_fp16(proto)
    elif precision == "int8":
        proto = _quantize_int8(fp32, path.with_name("int8.onnx"), job.calibration or [])
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "docsynth", json.dumps(meta, sort_keys=True)
    proto.producer_name, proto.producer_version = "docsynth", ""  # bytes independent of versions
    onnx.save(proto, str(path))
    return onnx_runner(path)


def onnx_runner(path: Path, threads: int = 1) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    backend = OnnxBackend(path, threads)
    return lambda x: {k: v.astype(np.float32) for k, v in backend.run(x).items()}


def check_onnx_graph(proto: Any, path: Path) -> None:
    """Fixed shapes and no operator that mobile runtimes lack, or the export is refused."""
    ops = {n.op_type for n in proto.graph.node}
    bad = sorted(ops & FORBIDDEN_ONNX_OPS)
    if bad:
        raise DocsynthError(f"{path.name}: the exported graph uses {', '.join(bad)}, which mobile runtimes "
                            "do not run; the backbone must avoid it")
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if not dims or any(not d.HasField("dim_value") for d in dims):
            raise DocsynthError(f"{path.name}: {value.name} has a dynamic shape; the backbone must "
                                "produce fixed shapes")


def _to_fp16(proto: Any) -> Any:
    """Half-precision weights and activations; the graph's input and outputs stay float32 so
    callers feed and read the same arrays at every precision."""
    from onnxruntime.transformers.float16 import convert_float_to_float16  # heavy, fp16 only

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warns about values clamped to the fp16 range
        return convert_float_to_float16(proto, keep_io_types=True)


class _Calibration:
    """ONNX Runtime's calibration reader over preprocessed composites."""

    def __init__(self, inputs: list[np.ndarray]):
        self.inputs = iter(inputs)

    def get_next(self):
        x = next(self.inputs, None)
        return None if x is None else {"image": x}

    def rewind(self):  # newer ONNX Runtime versions call it; one pass is all we need
        pass


def _quantize_int8(fp32: Path, path: Path, calib: list[np.ndarray]) -> Any:
    """Static int8 quantization: QDQ format (what mobile runtimes and NPUs read), int8 weights
    per output channel, uint8 activations with min-max ranges from the calibration composites.

    The first layer (the one reading the image) stays in float: quantizing the packaged model's
    first convolution alone moved heatmap corners by 2 px (median, at 192 px) and flipped peaks
    on a tenth of the photos, while every other layer alone moved them by hundredths of a pixel.
    It is the cheapest layer (3 input channels), so keeping it costs neither size nor time."""
    # onnx and ONNX Runtime's quantizer: heavy, int8 only
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calib:
        raise DocsynthError("int8 export needs calibration composites (--calibration N)")
    pre = path.with_name("pre.onnx")
    # folds constants and fuses Conv+BN first, so one quantized Conv stands where three ops were
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    graph = onnx.load(str(pre)).graph
    first = [n.name for n in graph.node if any(i.name in n.input for i in graph.input)][:1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(str(pre), str(path), _Calibration(calib), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=first)
    proto = onnx.load(str(path))
    if not any(n.op_type == "QuantizeLinear" for n in proto.graph.node):
        raise DocsynthError("int8 export: no layer of this model could be quantized (only its first layer, "
                            "kept in float, has weights); export fp16 instead")
    return proto
