"""Shared by the torchvision backbones: offline weight files and the output wrapper.

Nothing is downloaded. torchvision looks for pretrained files in the torch hub cache
(``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``) before it
would download them; we check that cache first and, when the file is missing, stop with a
message that names the exact file and folder, so a user behind a firewall can copy it there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from docsynth.errors import DocsynthError


def hub_file(weights_enum: Any) -> Path:
    """Where torchvision expects this pretrained file in the torch hub cache."""
    # torch only when a model is built: every plugin module loads at CLI start
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights_enum.url).path).name


def require_cached(weights_enum: Any, what: str) -> None:
    """Raise a clear DocsynthError unless the file for ``weights_enum`` is in the hub cache."""
    path = hub_file(weights_enum)
    if not path.is_file():
        raise DocsynthError(
            f"weights '{what}': {path.name} is not in the torch hub cache and nothing can be "
            f"downloaded here; copy {weights_enum.url} to {path} (or set TORCH_HOME), "
            "or train with --weights none")


def build_pretrained(factory, weights_enum: Any, what: str, **kwargs: Any):
    """Call a torchvision builder that loads ``weights_enum`` from the hub cache."""
    require_cached(weights_enum, what)
    try:
        return factory(**kwargs)
    except DocsynthError:
        raise
    except Exception as exc:  # torch.load raises many types on a truncated or foreign file
        raise DocsynthError(f"{hub_file(weights_enum)}: not usable as '{what}' weights "
                            f"({type(exc).__name__}: {str(exc)[:120]}); replace it with "
                            f"{weights_enum.url}") from None


def load_weights_file(model: Any, weights: str) -> Any:
    """Load a local file into ``model``: a docsynth checkpoint, a ``{"model"|"state_dict": ...}``
    dict or a plain state dict. Tensors whose shape differs (e.g. a 21-class head) are skipped;
    a file that fits less than half of the model is refused."""
    # torch only when a model is built: every plugin module loads at CLI start
    import torch

    path = Path(weights)
    if not path.is_file():
        raise DocsynthError(f"{path}: weights file not found; pass none, imagenet, coco or an existing file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise DocsynthError(f"{path}: not a readable weights file ({type(exc).__name__})") from None
    if isinstance(state, dict):
        for key in ("model", "state_dict"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise DocsynthError(f"{path}: holds no state dict")
    own = model.state_dict()
    fits = {k: v.float() if v.is_floating_point() else v for k, v in state.items()
            if k in own and hasattr(v, "shape") and v.shape == own[k].shape}
    if len(fits) < len(own) / 2:
        raise DocsynthError(f"{path}: fits only {len(fits)} of the model's {len(own)} tensors; "
                            "is it for another backbone?")
    model.load_state_dict(fits, strict=False)
    return model


def segmenter(net: Any, aux: bool = True, weights: str = "none"):
    """Wrap a torchvision segmentation model so it returns docsynth's output dict, and load
    ``weights`` into it when that is a file (none, coco and imagenet were the builder's business).

    Same sub-module names as torchvision (``backbone``, ``classifier``, ``aux_classifier``),
    so torchvision state dicts load unchanged; the auxiliary head runs in training only."""
    # torch only when a model is built: every plugin module loads at CLI start
    import torch.nn.functional as F
    from torch import nn

    class Segmenter(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = net.backbone
            self.classifier = net.classifier
            self.aux_classifier = getattr(net, "aux_classifier", None) if aux else None

        def forward(self, x):
            size = x.shape[-2:]
            features = self.backbone(x)
            if isinstance(self.classifier, nn.Sequential):  # DeepLabV3 head: reads "out"
                logits = self.classifier(features["out"])
            else:  # LR-ASPP head: reads the whole feature dict
                logits = self.classifier(features)
            out = {"out": F.interpolate(logits, size=size, mode="bilinear", align_corners=False)}
            if self.training and self.aux_classifier is not None:
                out["aux"] = F.interpolate(self.aux_classifier(features["aux"]), size=size,
                                           mode="bilinear", align_corners=False)
            return out

    model = Segmenter()
    if weights not in ("none", "coco", "imagenet"):
        load_weights_file(model, weights)
    return model
