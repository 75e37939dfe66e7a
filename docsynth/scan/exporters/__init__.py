"""The export formats, one module each, registered in one table (:data:`EXPORTERS`).

An :class:`Exporter` names its file suffix, its precisions, the optional extra it needs (the
modules to import and the install line) and its ``export(job) -> runner``: it writes
``job.path`` and returns ``x -> {key: output}`` on the written file, or None where the file
cannot run here (Core ML off Apple systems: checked structurally instead).
:mod:`docsynth.scan.export_model` runs one through the same checks whatever the format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from docsynth.scan.exporters import to_coreml, to_onnx, to_tflite, to_torchscript
from docsynth.scan.exporters.job import Job


@dataclass(frozen=True)
class Exporter:
    suffix: str
    precisions: tuple[str, ...]
    export: Callable[[Job], Any]
    needs: tuple[str, ...] = ()  # modules of an optional extra, imported before any work
    install: str = ""  # how to install them


EXPORTERS: dict[str, Exporter] = {
    "onnx": Exporter(".onnx", ("fp32", "fp16", "int8"), to_onnx.export),
    "torchscript": Exporter(".ts", ("fp32",), to_torchscript.export),
    "tflite": Exporter(".tflite", ("fp32",), to_tflite.export, ("litert_torch", "ai_edge_litert.interpreter"),
                       "pip install 'docsynth[tflite]' (litert-torch, ai-edge-litert)"),
    "coreml": Exporter(".mlpackage", ("fp32", "fp16"), to_coreml.export, ("coremltools",),
                       "pip install 'docsynth[coreml]' (coremltools)"),
}

__all__ = ["EXPORTERS", "Exporter", "Job"]
