"""TFLite (fp32) through LiteRT's PyTorch converter (``litert-torch``), run with the LiteRT
interpreter; an optional extra (``pip install 'docsynth[tflite]'``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from docsynth.errors import DocsynthError
from docsynth.scan.exporters.common import native_chatter_muted, quiet_litert, wrapper
from docsynth.scan.exporters.job import Job


def export(job: Job) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """LiteRT's converter traces the model with torch.export and lowers it to TFLite; the
    LiteRT interpreter then runs the file for the check."""
    model, keys, x0, path = job.model, job.keys, job.x0, job.path
    quiet_litert()
    with native_chatter_muted():
        # optional extra [tflite] (it pulls jax), and torch: this export only
        import litert_torch
        import torch

        try:
            edge = litert_torch.convert(wrapper(model, keys, as_dict=False), (torch.from_numpy(x0),))
            edge.export(str(path))
        except Exception as exc:  # the converter's errors are long; keep the first line
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise DocsynthError(f"litert-torch could not convert this model: {type(exc).__name__}: {first}; "
                                "not written") from None
        return tflite_runner(path, keys)


def tflite_runner(path: Path, keys: list[str]) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """Run a .tflite file with the LiteRT interpreter on one thread; outputs in the order of
    ``keys`` (the converter keeps the order of the model's output tuple)."""
    quiet_litert()
    with native_chatter_muted():
        from ai_edge_litert.interpreter import Interpreter  # optional extra [tflite]

        interp = Interpreter(model_path=str(path), num_threads=1)
        runner = interp.get_signature_runner()
        signature = interp.get_signature_list()["serving_default"]
        in_name = next(iter(signature["inputs"]))
        out_names = signature["outputs"]
        detail = interp.get_input_details()[0]
        runner(**{in_name: np.zeros(detail["shape"], detail["dtype"])})  # the delegate announces itself here
    if len(out_names) != len(keys):
        raise DocsynthError(f"{path.name}: the TFLite model has {len(out_names)} outputs, expected {len(keys)} "
                            f"({', '.join(keys)})")

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        res = runner(**{in_name: x})
        # signature outputs are named output_0, output_1, ...: sort numerically to restore order
        ordered = [res[n] for n in sorted(out_names, key=lambda n: int(n.rsplit("_", 1)[-1]))]
        return {k: np.asarray(v, np.float32) for k, v in zip(keys, ordered, strict=True)}

    return run
