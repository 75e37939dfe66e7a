"""Where each photo pixel comes from on the flat page: the page's geometry, step by step.

A compositor knows every geometric step it applies to the page (homography, curl, fold, then
the pipeline's flips, rotations and distortions). It records them, in order, as a
:class:`PageMap`: a chain of :class:`Stage` objects, each able to move points forward (flat page
-> photo) and backward (photo -> flat page). Labels are composed from these exact maps, never
re-estimated from pictures (``docsynth.generate.dewarp`` turns them into ``uv``, ``bm`` and
word polygons).

Coordinates are pixel-edge coordinates throughout: the flat page spans ``[0, W] x [0, H]`` of
its document image, a frame spans ``[0, w] x [0, h]``; pixel (i, j) covers ``[j, j+1) x [i,
i+1)``. A stage that reads from a frame (a rotation, a remap) knows that frame's size: a point
that comes from outside it shows something else (a reflected border, nothing at all), so
``backward`` makes it NaN. The page itself ends at its edges and, for pages with their own
mask (cards, torn receipts), where that mask ends.

Recording is cheap (references to parameters the step computed anyway), so compositors always
record; the maps are only evaluated when ``generate.labels`` asks for them. A step that moves
the page but cannot report how makes the map *opaque*: evaluating it raises, so labels are
never silently wrong (as albumentations refuses keypoints for transforms without them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from docsynth.errors import DocsynthError

Points = np.ndarray  # (N, 2) float64, x first


class Stage:
    """One geometric step. ``forward``/``backward`` take and return (N, 2) float64 points;
    ``backward`` returns NaN for points that do not come from the stage's source frame.
    ``projective`` is True when straight lines stay straight (word polygons need no extra
    points)."""

    name = "stage"
    projective = True
    source_frame: tuple[float, float] | None = None  # (w, h) of the frame this stage reads

    def forward(self, pts: Points) -> Points:
        raise NotImplementedError

    def backward(self, pts: Points) -> Points:
        raise NotImplementedError


class Homography(Stage):
    """A 3x3 homography in edge coordinates (paste, rotation, flips, scaling are all one)."""

    def __init__(self, h: np.ndarray, source_frame: tuple[float, float] | None = None, name: str = "homography"):
        self.h = np.asarray(h, np.float64)
        self.inv = np.linalg.inv(self.h)
        self.source_frame = source_frame
        self.name = name

    @staticmethod
    def _apply(h: np.ndarray, pts: Points) -> Points:
        pts = np.asarray(pts, np.float64)
        x, y = pts[:, 0], pts[:, 1]
        den = h[2, 0] * x + h[2, 1] * y + h[2, 2]
        return np.stack([(h[0, 0] * x + h[0, 1] * y + h[0, 2]) / den,
                         (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / den], axis=1)

    def forward(self, pts: Points) -> Points:
        return self._apply(self.h, pts)

    def backward(self, pts: Points) -> Points:
        return self._apply(self.inv, pts)


def affine(m: np.ndarray, source_frame: tuple[float, float] | None = None, name: str = "affine") -> Homography:
    """A 2x3 affine matrix (edge coordinates) as a stage."""
    return Homography(np.vstack([np.asarray(m, np.float64), [0.0, 0.0, 1.0]]), source_frame, name)


class Mapped(Stage):
    """A stage given by two functions (curl, fold, lens and grid distortions)."""

    projective = False

    def __init__(self, forward: Callable[[Points], Points], backward: Callable[[Points], Points],
                 source_frame: tuple[float, float] | None = None, name: str = "warp"):
        self._forward, self._backward = forward, backward
        self.source_frame = source_frame
        self.name = name

    def forward(self, pts: Points) -> Points:
        return np.asarray(self._forward(np.asarray(pts, np.float64)), np.float64)

    def backward(self, pts: Points) -> Points:
        return np.asarray(self._backward(np.asarray(pts, np.float64)), np.float64)


@dataclass(frozen=True)
class PageMap:
    """The flat page (``size`` = (W, H) of its document image, optional ``mask``) and the
    stages that carry it into the photo, first to last. Immutable: :meth:`then` returns a new
    map, so a sample's map can be shared by the steps that copy the sample."""

    size: tuple[float, float]
    stages: tuple[Stage, ...] = ()
    mask: np.ndarray | None = field(default=None, compare=False)
    opaque: str | None = None  # the name of a step that moved the page without saying how
    words: list | None = field(default=None, compare=False)  # the page's words (Page.words)

    def then(self, stage: Stage | None, step: str = "") -> PageMap:
        """This map followed by ``stage``; None means a step moved the page and cannot say how."""
        if stage is None:
            return PageMap(self.size, self.stages, self.mask, self.opaque or step or "unknown step", self.words)
        return PageMap(self.size, self.stages + (stage,), self.mask, self.opaque, self.words)

    @property
    def projective(self) -> bool:
        return all(s.projective for s in self.stages)

    def check(self) -> None:
        if self.opaque:
            raise DocsynthError(f"generate.labels: step {self.opaque!r} moves the page but cannot report its "
                                "mapping, so dewarp/text labels cannot be made; remove the step (or set its p "
                                "to 0) or set generate.labels: []")

    def forward(self, flat: Points) -> Points:
        """Flat page points (document pixels) -> photo points (edge coordinates)."""
        self.check()
        pts = np.asarray(flat, np.float64).reshape(-1, 2)
        for stage in self.stages:
            pts = stage.forward(pts)
        return pts

    def backward(self, photo: Points) -> Points:
        """Photo points -> flat page points (document pixels); NaN where the photo does not
        show the page there (off the page, or content a step made up)."""
        self.check()
        pts = np.asarray(photo, np.float64).reshape(-1, 2).copy()
        for stage in reversed(self.stages):
            ok = ~np.isnan(pts[:, 0])  # points a later step made up stay NaN
            if ok.all():
                pts = stage.backward(pts)
            else:
                pts[ok] = stage.backward(pts[ok])
            if stage.source_frame is not None:
                w, h = stage.source_frame
                with np.errstate(invalid="ignore"):
                    out = (pts[:, 0] < 0) | (pts[:, 0] > w) | (pts[:, 1] < 0) | (pts[:, 1] > h)
                pts[out] = np.nan
        return self.on_page(pts)

    def on_page(self, flat: Points) -> Points:
        """``flat`` with NaN where a point is off the page (its edges, and its own mask)."""
        pts = np.array(flat, np.float64)
        w, h = self.size
        eps = 1e-6 * max(w, h)  # a point on the edge that went through a homography and back
        x, y = pts[:, 0], pts[:, 1]
        with np.errstate(invalid="ignore"):
            off = ~((x >= -eps) & (x <= w + eps) & (y >= -eps) & (y <= h + eps))  # NaN is off too
        if self.mask is not None:
            mh, mw = self.mask.shape[:2]
            on = np.flatnonzero(~off)
            xi = np.minimum((x[on] * (mw / w)).astype(np.int64), mw - 1).clip(0)
            yi = np.minimum((y[on] * (mh / h)).astype(np.int64), mh - 1).clip(0)
            off[on[self.mask[yi, xi] < 128]] = True
        pts[off] = np.nan
        return pts


def page_map(page, *stages: Stage | None) -> PageMap:
    """The map of ``page`` (a :class:`docsynth.kinds.Page`: its size, mask and words) through
    ``stages`` (None entries are skipped)."""
    h, w = page.image.shape[:2]
    return PageMap((float(w), float(h)), tuple(s for s in stages if s is not None), page.mask, None,
                   page.words)
