"""The export formats, one module each, registered in one table (:data:`EXPORTERS`).

An :class:`Exporter` names its file suffix, its precisions, the optional extra it needs (the
modules to import and the install line) and its ``export(job) -> runner``: it writes
``job.path`` and returns ``x -> {key: output}`` on the written file, or None where the file
cannot run here (Core ML off Apple systems: checked structurally instead).
:mod:`docsynth.scan.export_model` runs one through the same checks whatever the format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docsynth.errors import DocsynthError
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

# Every suffix an exported model may end in, and its format.
FORMAT_OF_SUFFIX = {".onnx": "onnx", ".ts": "torchscript", ".torchscript": "torchscript", ".tflite": "tflite",
                    ".mlpackage": "coreml", ".mlmodel": "coreml"}


def format_for(out: Path, fmt: str | None) -> str:
    """The export format: ``--format`` when given (then ``--out``'s suffix must agree: an
    ``m.tflite`` holding ONNX would fail in the app that loads it), else what the suffix says."""
    by_suffix = FORMAT_OF_SUFFIX.get(out.suffix.lower())
    if fmt is None:
        if by_suffix is None:
            raise DocsynthError(f"{out}: cannot tell the format from the suffix {out.suffix or '(none)'!r}; pass "
                                f"--format ({', '.join(EXPORTERS)}) or end --out in "
                                f"{', '.join(sorted(FORMAT_OF_SUFFIX))}")
        return by_suffix
    if fmt in EXPORTERS and by_suffix is not None and by_suffix != fmt:  # no or another suffix: as asked
        suffix = EXPORTERS[fmt].suffix
        raise DocsynthError(f"{out}: --format {fmt} writes a {suffix} file, but --out ends in "
                            f"{out.suffix or '(no suffix)'!r}; end --out in {suffix}, or leave out --format "
                            "to export what the suffix says")
    return fmt


__all__ = ["EXPORTERS", "FORMAT_OF_SUFFIX", "Exporter", "Job", "format_for"]
