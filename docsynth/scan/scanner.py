"""Scanning photos: upright photo -> model prediction -> post-processor -> quad -> flat page.

A :class:`Scanner` joins a backend (a PyTorch checkpoint, an ONNX file or a TorchScript file,
all decoded by :func:`docsynth.scan.model_contract.prediction_from_outputs`) with a post-processor plugin.
With no checkpoint it uses the model shipped in the package: ``docsynth/assets/docsynth-cpu.onnx``
run with ONNX Runtime, so that scanning needs no torch. That file is exported from
``docsynth-cpu.pt`` (whose SHA-256 it records); when the two no longer belong together, the
checkpoint wins where torch is installed, and a note says how to re-export.

Photos are read upright (EXIF orientation applied) in BGR order, and the model contract's
preprocessing turns them into RGB, so a BGR photo is never fed to an RGB model. Corners are in
pixel-edge coordinates of the upright photo.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.geometry import page_corners, to_center_homography
from docsynth.io import read_image
from docsynth.kinds import Quad
from docsynth.scan.model_contract import load_model, meta_problem, prediction_from_outputs, preprocess

ASSETS = Path(__file__).resolve().parent.parent / "assets"
PACKAGED_MODEL = ASSETS / "docsynth-cpu.pt"
ONNX_META_KEY = "docsynth"  # metadata_props key holding the checkpoint meta as JSON
TORCHSCRIPT_META = "docsynth.json"  # extra file in a TorchScript archive
MAX_PAGE_SIDE = 8000  # a flattened page larger than this is a wrong quad, not a page
# How to rebuild the packaged ONNX after docsynth-cpu.pt changes (docs/scan.md, recipes/cpu/export.sh).
REEXPORT = ("docsynth export-model docsynth/assets/docsynth-cpu.pt --format onnx "
            "--out docsynth/assets/docsynth-cpu.onnx --force")
TRAIN_EXTRA = ("pip install torch==2.14.1 torchvision==0.29.1 && pip install 'docsynth[train]' "
               "(see README: the torch pin avoids a multi-GB build)")


def packaged_onnx() -> Path:
    """The packaged ONNX export; derived from PACKAGED_MODEL at call time so that moving the
    packaged checkpoint (tests do) moves both."""
    return PACKAGED_MODEL.with_suffix(".onnx")


def packaged_model_available() -> bool:
    return PACKAGED_MODEL.is_file() or packaged_onnx().is_file()


def packaged_model_path() -> Path:
    if not packaged_model_available():
        raise DocsynthError(f"no packaged model is installed ({packaged_onnx()} and {PACKAGED_MODEL} are missing); "
                            "pass a checkpoint: docsynth scan CHECKPOINT PHOTOS --out DIR")
    return packaged_onnx() if packaged_onnx().is_file() else PACKAGED_MODEL


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def torch_missing_error(what: str) -> DocsynthError:
    return DocsynthError(f"{what} needs PyTorch, which is not installed: {TRAIN_EXTRA}")


def _note(message: str) -> None:
    # Progress and notes go to stderr; scan's results stay alone on stdout.
    print(f"docsynth: note: {message}", file=sys.stderr)


def read_photo(path: str | Path) -> np.ndarray:
    """A photo as upright BGR uint8 (OpenCV applies the EXIF orientation while decoding)."""
    return read_image(path, cv2.IMREAD_COLOR)


# ---------------------------------------------------------------------------------------------
# Backends: something that turns a photo into a Prediction
# ---------------------------------------------------------------------------------------------


class RawBackend:
    """A scan backend around a raw-output runner: ``run(x)`` takes one preprocessed 1 x 3 x H x W
    input and returns the model's outputs by name (batch axis kept). Every backend scans through
    this one ``predict``, so PyTorch, TorchScript, ONNX Runtime and the exports decode alike."""

    def __init__(self, run: Callable[[np.ndarray], dict[str, np.ndarray]], meta: dict[str, Any]):
        self.run, self.meta = run, meta

    def predict(self, image: np.ndarray):
        outs = self.run(preprocess(image, self.meta))
        return prediction_from_outputs({k: np.asarray(v[0], np.float32) for k, v in outs.items()},
                                       image.shape[1], image.shape[0])


class TorchBackend(RawBackend):
    """A PyTorch model (a checkpoint's, or one in memory) following the model contract."""

    def __init__(self, model: Any, meta: dict[str, Any]):
        self.model, self.meta = model, meta

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        import torch  # torch: scanning ONNX models needs none

        with torch.inference_mode():
            out = self.model(torch.from_numpy(x))
        return {k: v.float().numpy() for k, v in out.items() if k != "aux"}


class TorchScriptBackend(TorchBackend):
    """A TorchScript file written by ``docsynth export-model`` (same outputs as the model)."""


class OnnxBackend(RawBackend):
    """An ONNX file written by ``docsynth export-model`` run with ONNX Runtime on the CPU."""

    def __init__(self, path: str | Path, threads: int = 0):
        try:
            # ONNX Runtime: loaded only to run an ONNX model
            import onnxruntime as ort
        except ImportError:
            raise DocsynthError(f"{path}: ONNX models need onnxruntime; pip install onnxruntime") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # 0 = ONNX Runtime's default
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise DocsynthError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        if ONNX_META_KEY not in props:
            raise DocsynthError(f"{path}: ONNX model lacks docsynth metadata; export it with "
                                "docsynth export-model")
        self.path = Path(path)
        try:
            meta: Any = json.loads(props[ONNX_META_KEY])
        except ValueError:
            meta = None

        problem = meta_problem(meta) if isinstance(meta, dict) else "its docsynth metadata is not JSON"
        if problem:
            raise DocsynthError(f"{path}: {problem}; re-export it with docsynth export-model")
        self.meta = meta
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs (batch axis kept) for a preprocessed 1 x 3 x H x W input."""
        return dict(zip(self.output_names, self.session.run(None, {self.input_name: x}), strict=True))


def is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _torch_importable() -> bool:
    try:
        # a probe: is torch installed?
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _packaged_backend(threads: int):
    """The packaged model: its ONNX export, unless that was exported from another checkpoint
    than the packaged one (the .pt was replaced and not re-exported); then the checkpoint,
    where torch can run it."""
    onnx_path, pt_path = packaged_onnx(), PACKAGED_MODEL
    if not onnx_path.is_file():
        return None
    backend = OnnxBackend(onnx_path, threads)
    source = backend.meta.get("source_sha256")
    if pt_path.is_file() and source != file_sha256(pt_path):
        if _torch_importable():
            _note(f"{onnx_path.name} was not exported from the packaged {pt_path.name}; scanning with "
                  f"{pt_path.name} (PyTorch). Re-export it: {REEXPORT}")
            return None
        _note(f"{onnx_path.name} was not exported from the packaged {pt_path.name}, which needs PyTorch; "
              f"scanning with {onnx_path.name}. Re-export it: {REEXPORT}")
    return backend


def load_backend(path: str | Path | None, threads: int = 0):
    """A backend for a checkpoint (.pt), an ONNX file (.onnx) or a TorchScript file; None = the
    packaged model (its ONNX export, see :func:`_packaged_backend`)."""
    if path is None:
        packaged_model_path()  # one clear line when neither packaged file is installed
        backend = _packaged_backend(threads)
        if backend is not None:
            return backend
        path = PACKAGED_MODEL
    path = Path(path)
    if not path.is_file():
        raise DocsynthError(f"{path}: model file not found")
    if path.suffix.lower() == ".onnx":
        return OnnxBackend(path, threads)
    try:
        import torch  # torch: only .pt and .ts models need it
    except ImportError:
        raise torch_missing_error(f"{path}: a PyTorch model") from None

    if threads:
        torch.set_num_threads(threads)
    if is_torchscript(path):
        extra = {TORCHSCRIPT_META: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit announces its deprecation
                model = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except Exception as exc:
            raise DocsynthError(f"{path}: not a readable TorchScript model ({type(exc).__name__})") from None
        if not extra[TORCHSCRIPT_META]:
            raise DocsynthError(f"{path}: TorchScript model lacks docsynth metadata; export it with "
                                "docsynth export-model")
        return TorchScriptBackend(model.eval(), json.loads(extra[TORCHSCRIPT_META]))
    model, ckpt = load_model(path)
    return TorchBackend(model, ckpt)


# ---------------------------------------------------------------------------------------------
# The scanner
# ---------------------------------------------------------------------------------------------


@dataclass
class ScanResult:
    quad: Quad
    page: np.ndarray | None  # the flattened page, None when no page was found
    prediction: Any  # docsynth.scan.model_contract.Prediction


class Scanner:
    def __init__(self, backend: Any, post: str = "refine", post_options: dict[str, Any] | None = None):
        self.backend = backend
        self.post_name = post
        self.post = plugins.get("postprocessor", post)
        self.post_options = options_mod.build(self.post, post_options, "scan.postprocessor_options")

    def locate(self, image: np.ndarray) -> tuple[Quad, Any]:
        """(quad, prediction) for one upright BGR photo."""
        pred = self.backend.predict(image)
        extra = {"corners": pred.corners, "corner_scores": pred.corner_scores}
        try:
            quad = self.post.find_quad(pred.page_prob, image, self.post_options, extra)
        except Exception as exc:  # a broken post-processor plugin costs one photo, not the run
            return Quad(None, 0.0, f"post-processor {self.post_name!r} failed: {type(exc).__name__}: {exc}"), pred
        if quad.corners is not None:
            c = np.asarray(quad.corners, dtype=np.float64)
            if c.shape != (4, 2) or not np.isfinite(c).all():
                return Quad(None, 0.0, f"post-processor {self.post_name!r} returned invalid corners"), pred
            quad = Quad(c, float(quad.confidence), quad.reason)
        return quad, pred

    def method(self, image: np.ndarray) -> tuple[Quad, np.ndarray]:
        """The evaluation interface: (quad, predicted page mask)."""
        quad, pred = self.locate(image)
        return quad, pred.page_prob > 0.5

    def scan(self, image: np.ndarray) -> ScanResult:
        quad, pred = self.locate(image)
        page = None if quad.corners is None else flatten(image, quad.corners)
        return ScanResult(quad, page, pred)


def page_size(corners: np.ndarray) -> tuple[int, int]:
    """Output (width, height) of the flattened page: the longer of each pair of opposite sides."""
    c = np.asarray(corners, dtype=np.float64)
    side = lambda a, b: float(np.hypot(*(c[b] - c[a])))  # noqa: E731
    width = max(side(0, 1), side(3, 2))
    height = max(side(0, 3), side(1, 2))
    return (int(np.clip(round(width), 1, MAX_PAGE_SIDE)), int(np.clip(round(height), 1, MAX_PAGE_SIDE)))


def flatten(image: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The page inside ``corners`` (TL, TR, BR, BL, edge coordinates) warped to a rectangle with
    Lanczos interpolation; parts of the page outside the photo come out black."""
    w, h = page_size(corners)
    src = np.asarray(corners, dtype=np.float32)
    dst = page_corners(w, h).astype(np.float32)
    m = to_center_homography(cv2.getPerspectiveTransform(src, dst).astype(np.float64))
    return cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_CONSTANT)
