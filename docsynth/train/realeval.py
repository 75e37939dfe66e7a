"""Score a model on real photos after each epoch: the number that matters.

A folder like ``../shared/realdocs``: images plus ``corners.csv``
(image,tl_x,tl_y,tr_x,tr_y,br_x,br_y,bl_x,bl_y in photo pixels). The score of a photo is the
IoU of the predicted page mask (page probability > 0.5) with the annotated quad, rasterised;
corner models are also scored on the quad their corners span; and every model gets the
SmartDoc 2015 Jaccard of the quad the scan post-processor (``refine``) finds, the score
`docsynth evaluate` reports. Photos are shrunk once to at most ``max_side`` pixels (the
scores hardly change, the time does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.formats import corners as corners_csv
from docsynth.geometry import mask_iou, quad_mask
from docsynth.io import read_image
from docsynth.scan.model_contract import predict, prediction_from_outputs, preprocess
from docsynth.scoring import jaccard_smartdoc


class RealEval:
    """Photos and their true page masks, loaded once per run."""

    def __init__(self, folder: str | Path, max_side: int = 1024):
        self.items: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []  # name, photo, truth mask, corners
        for photo, corners in corners_csv.read_folder(folder):
            image = read_image(photo)
            h, w = image.shape[:2]
            scale = min(1.0, max_side / max(h, w))
            if scale < 1:
                image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
                corners = corners * (image.shape[1] / w, image.shape[0] / h)
            self.items.append((photo.name, image, quad_mask(corners, image.shape[:2]), corners))

    def evaluate(self, model: Any, meta: dict[str, Any], device: Any) -> dict[str, Any]:
        """Mean IoU (and per photo) of ``model`` in eval mode on ``device``."""
        post = plugins.get("postprocessor", "refine")
        post_options = options_mod.build(post, {})  # the defaults, as `scan` uses them
        was_training = model.training
        model.eval()
        per_photo, corner_ious, jaccards = {}, [], []
        try:
            for name, image, truth, gt in self.items:
                if device.type == "cpu":
                    pred = predict(model, meta, image)
                else:  # same as predict(), on the training device
                    x = torch.from_numpy(preprocess(image, meta)).to(device)
                    with torch.inference_mode():
                        out = model(x)
                    pred = prediction_from_outputs({k: v[0].float().cpu().numpy() for k, v in out.items()
                                                    if k != "aux"}, image.shape[1], image.shape[0])
                per_photo[name] = round(mask_iou(pred.page_prob > 0.5, truth), 4)
                if pred.corners is not None:
                    corner_ious.append(mask_iou(quad_mask(pred.corners, truth.shape), truth))
                quad = post.find_quad(pred.page_prob, image, post_options,
                                      {"corners": pred.corners, "corner_scores": pred.corner_scores})
                jaccards.append(jaccard_smartdoc(gt, quad.corners))
        finally:
            model.train(was_training)
        result = {"real_iou": round(float(np.mean(list(per_photo.values()))), 4), "real_per_photo": per_photo,
                  "real_jaccard": round(float(np.mean(jaccards)), 4)}
        if corner_ious:
            result["real_corner_iou"] = round(float(np.mean(corner_ious)), 4)
        return result
