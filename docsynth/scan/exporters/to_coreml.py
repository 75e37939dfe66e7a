"""Core ML (fp32, fp16) through ``coremltools``: an ML program (``.mlpackage`` folder); an
optional extra (``pip install 'docsynth[coreml]'``)."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from docsynth.errors import DocsynthError
from docsynth.scan.exporters.common import native_chatter_muted, wrapper
from docsynth.scan.exporters.job import Job


def export(job: Job) -> Callable[[np.ndarray], dict[str, np.ndarray]] | None:
    """An ML program from the traced model. Core ML runs only on Apple systems: elsewhere the
    saved package is checked structurally and the runner is None. The check reloads the
    package (manifest, model spec, weights), and requires an ML program whose input is
    ``image`` and whose outputs are ``keys``, with the fixed shapes PyTorch gives (``shapes``),
    every weight it references inside its weight file, and the docsynth meta."""
    model, keys, x0, path, meta, precision, shapes = (job.model, job.keys, job.x0, job.path, job.meta,
                                                       job.precision, job.shapes)
    with native_chatter_muted():  # coremltools announces missing native parts and untested torch
        # optional extra [coreml], and torch: loaded by this export only
        import coremltools as ct
        import torch

        traced = torch.jit.trace(wrapper(model, keys, as_dict=False), torch.from_numpy(x0), strict=False)
        mlmodel = ct.convert(traced, inputs=[ct.TensorType(name="image", shape=x0.shape)],
                             outputs=[ct.TensorType(name=k) for k in keys], convert_to="mlprogram",
                             compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
                             minimum_deployment_target=ct.target.iOS15)
        mlmodel.user_defined_metadata["docsynth"] = json.dumps(meta, sort_keys=True)
        mlmodel.save(str(path))
        spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    check_coreml_spec(spec, path, keys, list(x0.shape), shapes or {})
    if platform.system() != "Darwin":
        return None
    loaded = ct.models.MLModel(str(path))
    return lambda x: {k: np.asarray(v, np.float32) for k, v in loaded.predict({"image": x}).items()}


def check_coreml_spec(spec: Any, path: Path, keys: list[str], in_shape: list[int],
                      shapes: dict[str, list[int]]) -> None:
    """The structural check of a saved .mlpackage (what can be checked without Core ML)."""
    def fail(msg: str) -> None:
        raise DocsynthError(f"{path.name}: {msg}; not written")

    if spec.WhichOneof("Type") != "mlProgram":
        fail(f"expected an ML program, got {spec.WhichOneof('Type')}")
    names_in = [i.name for i in spec.description.input]
    names_out = [o.name for o in spec.description.output]
    if names_in != ["image"] or names_out != keys:
        fail(f"Core ML model has inputs {names_in} and outputs {names_out}, expected ['image'] and {keys}")
    got = {"image": list(spec.description.input[0].type.multiArrayType.shape)}
    got.update({o.name: list(o.type.multiArrayType.shape) for o in spec.description.output})
    for name, want in {"image": in_shape, **shapes}.items():
        if got[name] != want:
            fail(f"Core ML {name} has shape {got[name]}, expected {want}")
    if "docsynth" not in spec.description.metadata.userDefined:
        fail("the docsynth meta is missing from the user metadata")
    weights = path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    size = weights.stat().st_size if weights.is_file() else 0
    main = spec.mlProgram.functions["main"]
    ops = main.block_specializations[main.opset].operations
    for op in ops:
        for attr in op.attributes.values():
            if attr.HasField("blobFileValue") and attr.blobFileValue.offset >= size:
                fail(f"weight {op.outputs[0].name} points past the end of its weight file ({size} bytes)")
    if not ops:
        fail("the ML program has no operations")
