"""Augmentation steps for docsynth's compositors (OpenCV/NumPy only).

Importing this package registers every step in :data:`STEPS`; :func:`build_pipeline` turns a
list of step specs (from a preset or YAML) into a runnable :class:`Pipeline`.

Modules: ``base`` (the step contract, OneOf, Pipeline), ``geometric`` (flips, rotation,
optical/grid/elastic warps), ``color``, ``camera`` (noise, blur, JPEG, vignetting),
``lighting`` (shadows, flare, uneven light, glare), ``scene`` (hands, occluders, distractors,
clutter), ``props`` (desk objects with volume), ``hold`` (a hand holding a card by
 its corner), ``surfaces`` (light desks), ``special_pages`` (cards, receipts), ``paper`` (curl and fold), ``camera_model`` (page pose and projection), ``paste``
(warping a page into the frame).
"""

from . import camera, color, cutouts, distractors, geometric, lighting, props, scene  # noqa: F401  (register the steps)
from .base import STEPS, GeometricStep, OneOf, Pipeline, Step, build_pipeline, build_step, register_step

__all__ = ["STEPS", "GeometricStep", "OneOf", "Pipeline", "Step", "build_pipeline", "build_step", "register_step"]
