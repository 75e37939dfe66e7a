"""Training losses (see notes in docsynth.scan.model_contract for the output contract).

- mask: the reference recipe's BCE on a per-class sigmoid plus (1 - soft IoU), both over the
  two channels of ``"out"``; ``"aux"`` adds the same loss times ``aux_weight``.
- corners (models that return ``"corners"`` heatmaps): BCE against Gaussian targets drawn at
  the heatmap's own resolution, weighted up near the peaks (a corner covers a handful of cells
  out of thousands), averaged over the samples that have corners only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from docsynth.schema import TrainSection

_SMOOTH = 1e-6
_PEAK_WEIGHT = 10.0  # extra weight of a cell in proportion to its target value


def mask_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``logits`` N x C x H x W, ``target`` N x H x W class indices."""
    logits = logits.float()
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float()
    bce = F.binary_cross_entropy_with_logits(logits, onehot)
    prob = torch.sigmoid(logits)
    inter = (prob * onehot).sum(dim=(2, 3))
    union = prob.sum(dim=(2, 3)) + onehot.sum(dim=(2, 3)) - inter
    soft_iou = ((inter + _SMOOTH) / (union + _SMOOTH)).mean()
    return bce + (1 - soft_iou)


def corner_targets(corners: torch.Tensor, h: int, w: int, sigma: float) -> torch.Tensor:
    """N x 4 x 2 normalised corners -> N x 4 x h x w Gaussians (peak 1 at the corner).

    Cell (i, j) stands for the point ((j + .5) / w, (i + .5) / h), as in docsynth.scan.model_contract."""
    ys = torch.arange(h, device=corners.device, dtype=torch.float32) + 0.5
    xs = torch.arange(w, device=corners.device, dtype=torch.float32) + 0.5
    cx = corners[..., 0].float()[..., None, None] * w  # N x 4 x 1 x 1, in cells
    cy = corners[..., 1].float()[..., None, None] * h
    d2 = (xs[None, None, None, :] - cx) ** 2 + (ys[None, None, :, None] - cy) ** 2
    return torch.exp(-d2 / (2 * sigma * sigma))


def corner_loss(logits: torch.Tensor, corners: torch.Tensor, has_corners: torch.Tensor,
                sigma: float, order: str = "fixed") -> torch.Tensor:
    """``order="cyclic"``: the loss is the smallest over the four clockwise rotations of the
    labels, so channel k means "the k-th corner clockwise from any start". The labels' own
    start (TL = smallest x + y) flips between two corners as a page turns past 45 degrees; a
    fixed-order target there asks the net for a discontinuity it cannot see in the image.
    Decoding orders the four points geometrically afterwards."""
    has = has_corners.bool()
    if not bool(has.any()):
        return logits.sum() * 0  # keeps the graph (DDP wants every parameter used)
    logits = logits[has].float()
    target = corner_targets(corners[has], logits.shape[-2], logits.shape[-1], sigma)
    if order != "cyclic":
        return F.binary_cross_entropy_with_logits(logits, target, weight=1 + _PEAK_WEIGHT * target)
    per = [F.binary_cross_entropy_with_logits(logits, t, weight=1 + _PEAK_WEIGHT * t, reduction="none").mean(dim=(1, 2, 3))
           for t in (torch.roll(target, shift, dims=1) for shift in range(4))]
    return torch.stack(per, dim=1).min(dim=1).values.mean()


def total_loss(outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
               train_cfg: TrainSection) -> tuple[torch.Tensor, dict[str, float]]:
    """The training objective and its parts (floats, for logging)."""
    parts = {"mask": mask_loss(outputs["out"], batch["mask"])}
    loss = parts["mask"]
    if "aux" in outputs:
        parts["aux"] = mask_loss(outputs["aux"], batch["mask"])
        loss = loss + train_cfg.aux_weight * parts["aux"]
    if "corners" in outputs:
        parts["corners"] = corner_loss(outputs["corners"], batch["corners"], batch["has_corners"],
                                       train_cfg.corner_sigma, train_cfg.corner_order)
        loss = loss + train_cfg.corner_weight * parts["corners"]
    return loss, {k: float(v.detach()) for k, v in parts.items()}
