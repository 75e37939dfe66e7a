"""The augmentation step contract and the pipeline that runs steps from a YAML-style spec.

A step works like an albumentations transform, written for docsynth's labels: it draws its
random parameters once (:meth:`Step.get_params`), then applies them to the image
(:meth:`Step.apply`), the page mask (:meth:`Step.apply_to_mask`) and every quad of corners
(:meth:`Step.apply_to_keypoints`: the main page and each extra instance). Using one set of
parameters for all three is what keeps geometry from drifting. Photometric steps subclass
:class:`Step` and only override ``apply``. Geometric steps subclass :class:`GeometricStep`,
whose ``apply_to_mask`` and ``apply_to_keypoints`` raise ``NotImplementedError`` until
overridden (as albumentations' DualTransform does) and whose ``page_stage`` reports the
step's point mapping for dense labels (the default, None, refuses ``generate.labels``), and
any step that overrides
``apply_to_mask`` must override ``apply_to_keypoints`` too (checked when the class is
defined), so a step that moves the page can never pass its corners through unchanged.
Steps whose warp is not a homography set ``approximate = True``: the mask
is warped exactly, the corners by inverting the warp numerically, and the sample is flagged.

Every random number comes from the ``rng`` passed in, so a sample is a pure function of the
generator's state.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import numpy as np

from docsynth.errors import DocsynthError
from docsynth.kinds import Sample

#: step name -> class, filled by :func:`register_step`
STEPS: dict[str, type[Step]] = {}


def register_step(cls: type[Step]) -> type[Step]:
    STEPS[cls.name] = cls
    return cls


def vars_up_to_step(cls: type) -> set[str]:
    """Names defined by ``cls`` and its bases below :class:`Step` (what a subclass overrides)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is not cls and klass.__module__ == __name__ and klass.__name__ in ("Step", "GeometricStep"):
            break
        names |= set(vars(klass))
    return names


class Step:
    """Base class. Subclasses set ``name``, ``defaults`` (their options) and override methods."""

    name = ""
    defaults: dict[str, Any] = {}
    p_default = 1.0
    approximate = False  # True when the warp is not a homography (corners are estimated)
    flags: tuple[str, ...] = ()  # flags added to the sample whenever the step runs
    case: str = ""  # hard-case tag recorded in sample.extra["cases"] when the step runs

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "apply_to_mask" in cls.__dict__ and "apply_to_keypoints" not in vars_up_to_step(cls):
            raise TypeError(f"step class {cls.__name__} ({cls.name!r}) changes the mask but not the corners: "
                            "implement apply_to_keypoints (return the corners unchanged only when the page "
                            "does not move, e.g. an occluder)")

    def __init__(self, p: float | None = None, **options: Any):
        unknown = set(options) - set(self.defaults)
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise DocsynthError(f"step {self.name!r}: unknown option(s) {', '.join(sorted(unknown))} "
                                f"(known: p, {known})")
        self.p = float(self.p_default if p is None else p)
        if not 0.0 <= self.p <= 1.0:
            raise DocsynthError(f"step {self.name!r}: p must be between 0 and 1, got {self.p}")
        self.options = {**copy.deepcopy(self.defaults), **options}
        for key, value in self.options.items():
            setattr(self, key, value)

    # -- what subclasses override ---------------------------------------------------------------
    def get_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        return {}

    def apply(self, image: np.ndarray, **params: Any) -> np.ndarray:
        return image

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return mask

    def apply_to_keypoints(self, corners: np.ndarray, **params: Any) -> np.ndarray:
        return corners

    # -- running ------------------------------------------------------------------------------
    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Run with probability ``p`` (one draw from ``rng`` either way, so streams stay aligned)."""
        if rng.random() >= self.p:
            return sample
        return self.run(sample, rng)

    def run(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Run unconditionally."""
        params = self.get_params(rng, sample)
        if params.get("skip"):
            return sample
        image = self.apply(sample.image, **params)
        mask = self.apply_to_mask(sample.mask, **params)
        corners = sample.corners
        if corners is not None:
            corners = self.apply_to_keypoints(np.asarray(corners, np.float64), **params)
        extra = sample.extra
        if extra.get("instances"):
            extra = dict(extra)
            extra["instances"] = [
                {**inst, "corners": self.apply_to_keypoints(np.asarray(inst["corners"], np.float64), **params)}
                for inst in extra["instances"]]
        flags = set(sample.flags) | set(self.flags) | set(params.get("flags", ()))
        if self.approximate and corners is not None:
            flags.add("approximate")
        if self.case:
            extra = dict(extra)
            extra["cases"] = sorted(set(extra.get("cases", ())) | {self.case})
        geometry = sample.geometry
        if geometry is not None and isinstance(self, GeometricStep):
            h, w = sample.image.shape[:2]
            geometry = geometry.then(self.page_stage((w, h), **params), self.name)
        return Sample(image=image, mask=mask, corners=corners, flags=flags, extra=extra, geometry=geometry)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p}, {self.options})"


class GeometricStep(Step):
    """Base class of steps that move pixels: image, mask and corners must all be implemented."""

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError(f"geometric step {self.name!r} ({type(self).__name__}) does not implement "
                                  "apply_to_mask")

    def apply_to_keypoints(self, corners: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError(f"geometric step {self.name!r} ({type(self).__name__}) does not implement "
                                  "apply_to_keypoints")

    def page_stage(self, frame: tuple[int, int], **params: Any):
        """How this step moves every point, for dense labels: a
        :class:`docsynth.generate.pagemap.Stage` reading from a ``frame`` (w, h) image. None
        (the default) means it cannot say: ``generate.labels`` then refuses the sample."""
        return None


class OneOf(Step):
    """Run exactly one of its steps (chosen uniformly), with probability ``p``."""

    name = "one_of"

    def __init__(self, steps: list[Step], p: float | None = None):
        super().__init__(p)
        if not steps:
            raise DocsynthError("one_of: needs at least one step")
        self.steps = steps

    def run(self, sample: Sample, rng: np.random.Generator) -> Sample:
        step = self.steps[int(rng.integers(len(self.steps)))]
        return step.run(sample, rng)

    def __repr__(self) -> str:
        return f"OneOf(p={self.p}, {self.steps})"


class Pipeline:
    """Steps run in order; each decides on its own probability."""

    def __init__(self, steps: Iterable[Step]):
        self.steps = list(steps)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for step in self.steps:
            sample = step(sample, rng)
        return sample

    def __repr__(self) -> str:
        return f"Pipeline({self.steps})"


def build_step(spec: Any, overrides: dict[str, dict[str, Any]] | None = None) -> Step:
    """A step from its spec: ``"hflip"``, ``{"step": "rotate", "p": 0.5, "limit": 30}`` or
    ``{"one_of": [...], "p": 0.8}``. ``overrides`` (step name -> options) patch any step of that
    name wherever it appears, so a YAML file can tune one step of a preset without copying it."""
    overrides = overrides or {}
    if isinstance(spec, str):
        spec = {"step": spec}
    if not isinstance(spec, dict):
        raise DocsynthError(f"compositor_options: a step must be a name or a mapping, got {spec!r}")
    spec = dict(spec)
    if "one_of" in spec:
        children = [build_step(s, overrides) for s in spec.pop("one_of")]
        p = spec.pop("p", None)
        if spec:
            raise DocsynthError(f"compositor_options: one_of accepts only 'p', got {sorted(spec)}")
        return OneOf(children, p)
    name = spec.pop("step", None)
    if name not in STEPS:
        known = ", ".join(sorted(STEPS))
        raise DocsynthError(f"compositor_options: unknown step {name!r}; known steps: {known}")
    patch = overrides.get(name) or {}
    if not isinstance(patch, dict):
        raise DocsynthError(f"compositor_options.steps.{name}: must be a mapping of options")
    options = {**spec, **patch}
    return STEPS[name](**options)


def build_pipeline(specs: list[Any], overrides: dict[str, dict[str, Any]] | None = None) -> Pipeline:
    unknown = set(overrides or {}) - set(STEPS)
    if unknown:
        raise DocsynthError(f"compositor_options.steps: unknown step(s) {', '.join(sorted(unknown))}; "
                            f"known steps: {', '.join(sorted(STEPS))}")
    return Pipeline(build_step(s, overrides) for s in specs)


def uniform(rng: np.random.Generator, bounds: Any) -> float:
    """A number drawn from ``[lo, hi]`` (a plain number means that value)."""
    if isinstance(bounds, (int, float)):
        return float(bounds)
    lo, hi = bounds
    return float(rng.uniform(lo, hi))
