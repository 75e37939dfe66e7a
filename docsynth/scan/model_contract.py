"""Model checkpoints and inference, shared by train, scan, evaluate and export.

The contract every backbone plugin's model follows:

- input: float tensor N x 3 x H x W, RGB, scaled to [0, 1] then normalised with the
  checkpoint's ``mean``/``std``; the photo is resized (squashed) to ``input_size``.
- output: a dict with ``"out"``: N x 2 x H x W logits (channel 1 = page), optional
  ``"aux"`` (same shape, training only) and, for corner models, ``"corners"``:
  N x 4 x h x w heatmap logits, channels TL, TR, BR, BL, covering the same field of view
  as the input (any h, w: a peak at heatmap cell (i, j) means the point
  ((j + 0.5) / w, (i + 0.5) / h) in normalised image coordinates).

A checkpoint is a dict saved with ``torch.save``; see :func:`save_checkpoint`.
torch is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.io import atomic_write_bytes
from docsynth.scan.mobile import decode_corners, input_hw  # the one NumPy implementation, also an app's reference

FORMAT = "docsynth-checkpoint-1"
REFERENCE_MEAN = (0.4611, 0.4359, 0.3905)
REFERENCE_STD = (0.2193, 0.2150, 0.2109)


@dataclass
class Prediction:
    page_prob: np.ndarray  # H x W float32 in [0, 1] at the photo's size
    corners: np.ndarray | None  # 4 x 2 photo pixels (edge coordinates), corner models only
    corner_scores: np.ndarray | None  # 4 peak probabilities


def save_checkpoint(path: str | Path, model: Any, meta: dict[str, Any], **state: Any) -> None:
    """Write a checkpoint atomically. ``meta`` must hold backbone, backbone_options,
    input_size, mean, std; ``state`` adds optimizer/scheduler/epoch/metrics/config..."""
    import torch  # torch: scan and evaluate run without it (ONNX)

    missing = {"backbone", "input_size", "mean", "std"} - set(meta)
    if missing:
        raise ValueError(f"checkpoint meta lacks {sorted(missing)}")
    payload = {"format": FORMAT, **meta, "model": model.state_dict(), **state}
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    import torch  # torch: scan and evaluate run without it (ONNX)

    path = Path(path)
    if not path.is_file():
        raise DocsynthError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise DocsynthError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DocsynthError(f"{path}: not a docsynth checkpoint (expected format {FORMAT})")
    problem = meta_problem(ckpt)
    if problem:
        raise DocsynthError(f"{path}: {problem}; the checkpoint is damaged or was edited, retrain or re-export it")
    return ckpt


def meta_problem(meta: dict[str, Any]) -> str | None:
    """What is wrong with a checkpoint's pre-processing settings (input_size, mean, std), if
    anything: a bad value here would fail deep inside the model, or allocate without bound."""
    size = meta.get("input_size")
    if not isinstance(size, int) or isinstance(size, bool) or not 16 <= size <= 2048:
        return f"input_size is {size!r}, expected an integer from 16 to 2048"
    for key in ("mean", "std"):
        values = meta.get(key)
        if not (isinstance(values, (list, tuple)) and len(values) == 3
                and all(isinstance(v, (int, float)) and np.isfinite(v) for v in values)):
            return f"{key} is {values!r}, expected 3 finite numbers"
    if min(meta["std"]) <= 0:
        return f"std is {meta['std']!r}, expected numbers above 0"
    return None


def build_model(ckpt: dict[str, Any]) -> Any:
    """Rebuild the model a checkpoint describes and load its weights (eval mode, fp32)."""
    backbone = plugins.get("backbone", ckpt["backbone"])
    options = options_mod.build(backbone, ckpt.get("backbone_options"), "checkpoint backbone_options")
    model = backbone.build(int(ckpt.get("num_classes", 2)), "none", options)
    state = {k: v.float() if hasattr(v, "is_floating_point") and v.is_floating_point() else v
             for k, v in ckpt["model"].items()}
    model.load_state_dict(state)
    model.eval()
    return model


def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint and rebuild its model; a checkpoint that no longer fits its backbone
    plugin (trained with another version of it) is a DocsynthError, not a traceback."""
    ckpt = read_checkpoint(path)
    try:
        model = build_model(ckpt)
    except DocsynthError:
        raise
    except Exception as exc:  # weights from another version of the backbone, a broken plugin...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DocsynthError(f"{path}: cannot rebuild its {ckpt.get('backbone')!r} model with the installed "
                            f"plugin ({type(exc).__name__}: {first}); was it trained with another version?") from None
    return model, ckpt


def preprocess(image_bgr: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """BGR uint8 photo -> 1 x 3 x H x W float32 array, RGB, normalised."""
    h, w = input_hw(meta)
    small = cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) * (1 / 255)
    norm = (rgb - np.asarray(meta["mean"], np.float32)) / np.asarray(meta["std"], np.float32)
    return np.ascontiguousarray(norm.transpose(2, 0, 1)[None])


def predict(model: Any, meta: dict[str, Any], image_bgr: np.ndarray) -> Prediction:
    """Run a model on one BGR photo; probabilities and corners come back at the photo's size."""
    import torch  # torch: scan and evaluate run without it (ONNX)

    x = torch.from_numpy(preprocess(image_bgr, meta))
    with torch.inference_mode():
        out = model(x)
    return prediction_from_outputs({k: v[0].float().numpy() for k, v in out.items() if k != "aux"},
                                   image_bgr.shape[1], image_bgr.shape[0])


def prediction_from_outputs(out: dict[str, np.ndarray], width: int, height: int) -> Prediction:
    """Turn one image's raw outputs (no batch axis) into a :class:`Prediction` at photo size.

    Shared by PyTorch and ONNX Runtime inference so both decode identically."""
    logits = out["out"]
    page = 1 / (1 + np.exp(-(logits[1] - logits[0])))  # softmax over two classes
    page_prob = cv2.resize(page.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    corners = scores = None
    if "corners" in out:
        corners, scores = decode_corners(out["corners"], width, height)
    return Prediction(page_prob=page_prob, corners=corners, corner_scores=scores)
