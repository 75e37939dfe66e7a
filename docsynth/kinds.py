"""The plugin kinds: what a registered object looks like and what the core passes it.

Each kind is a small typed protocol. A plugin registers any object with these attributes
(a dataclass, a class instance, a module-level singleton). Images are NumPy arrays in OpenCV
layout: ``uint8``, HxWx3, BGR; masks are ``uint8`` HxW with 0 = background, 255 = page.
Corners are float arrays of shape (4, 2), order TL, TR, BR, BL, in pixel-edge coordinates
(the image spans ``[0, W] x [0, H]``; pixel (i, j) covers ``[j, j+1] x [i, i+1]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

# ---------------------------------------------------------------------------------------------
# Data passed between plugins and the core
# ---------------------------------------------------------------------------------------------


@dataclass
class DocumentRef:
    """A document a source can load: cheap to list, loaded on demand."""

    id: str  # unique within its source, stable across runs
    source: str
    path: str | None = None  # original file, when there is one
    meta: dict[str, Any] = field(default_factory=dict)  # split, original id, licence, page...


@dataclass
class Page:
    """A loaded document page. ``corners``/``mask`` come from annotations when the source has them."""

    image: np.ndarray
    mask: np.ndarray | None = None
    corners: np.ndarray | None = None
    # Words the source knows (text labels): [{"text": str, "poly": [[x, y] x 4]}], clockwise from
    # the top-left, in this image's pixel-edge coordinates; None when the source has no text.
    words: list[dict[str, Any]] | None = None


@dataclass
class BackgroundRef:
    id: str
    provider: str
    path: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # licence, author, url, query...


@dataclass
class Sample:
    """What a compositor returns: one training image with its labels."""

    image: np.ndarray
    mask: np.ndarray
    corners: np.ndarray | None  # None for negatives (no document in the image)
    flags: set[str] = field(default_factory=set)  # truncated, occluded, approximate, negative
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. more instances' corners
    # How the page got into the image (docsynth.generate.pagemap.PageMap), when the compositor
    # reports it; dewarp and text labels are computed from it. Not written anywhere itself.
    geometry: Any = None


@dataclass
class Quad:
    """A scan post-processor's answer: the page outline in the photo, or no page."""

    corners: np.ndarray | None
    confidence: float
    reason: str = ""


# ---------------------------------------------------------------------------------------------
# Plugin kinds
# ---------------------------------------------------------------------------------------------


@runtime_checkable
class Source(Protocol):
    """A dataset of document images (a public dataset, a folder, a renderer)."""

    name: str
    description: str
    licence: str
    homepage: str

    def list_documents(self, options: dict[str, Any]) -> list[DocumentRef]:
        """Every document available with these options (e.g. ``root`` folder), in a stable order."""

    def load_document(self, ref: DocumentRef) -> Page:
        """Decode one document (cleaned: cropped, non-page parts removed). Raise on unreadable input."""


@runtime_checkable
class BackgroundProvider(Protocol):
    """Surfaces to put documents on: a folder, a renderer, an image search API."""

    name: str
    description: str
    licence: str

    def list_backgrounds(self, options: dict[str, Any]) -> list[BackgroundRef]:
        """Every background available with these options, in a stable order."""

    def load_background(self, ref: BackgroundRef) -> np.ndarray:
        """Decode one background as a BGR image."""


@runtime_checkable
class ScrapingProvider(Protocol):
    """A background provider that can also search an image API or a list of URLs: what
    ``docsynth backgrounds scrape`` needs. Not a kind of its own: a provider registered with
    ``register_backgrounds`` that has ``search`` is one (see :func:`can_scrape`)."""

    name: str

    def search(self, query: str, options: dict[str, Any], client: Any) -> Iterator[Any]:
        """Yield :class:`docsynth.backgrounds.scrape.Candidate` records for ``query`` page by page, in a
        stable order, until the end; every request goes through ``client``
        (:class:`docsynth.http.PoliteClient`)."""


def can_scrape(provider: Any) -> bool:
    """Whether a background provider is also a :class:`ScrapingProvider`."""
    return isinstance(provider, ScrapingProvider) and callable(provider.search)


@runtime_checkable
class MaskStrategy(Protocol):
    """Turns a page (and its annotation, if any) into a page mask and corners."""

    name: str
    description: str

    def make_mask(self, page: Page) -> Page:
        """Return the page with ``mask`` (HxW uint8) and ``corners`` (4x2, or None) filled."""


@runtime_checkable
class Compositor(Protocol):
    """Puts a page on a background: geometry, lighting and camera effects."""

    name: str
    description: str

    def compose(
        self, page: Page, background: np.ndarray, rng: np.random.Generator, options: dict[str, Any]
    ) -> Sample:
        """Make one sample. All randomness must come from ``rng``."""


@runtime_checkable
class Backbone(Protocol):
    """A trainable model (``torch`` is imported lazily inside ``build``)."""

    name: str
    description: str
    outputs: str  # "mask" or "mask+corners"

    def build(self, num_classes: int, weights: str, options: dict[str, Any]) -> Any:
        """Return a ``torch.nn.Module``. ``weights``: 'none', 'imagenet', 'coco' or a file path."""


@runtime_checkable
class PostProcessor(Protocol):
    """Turns a predicted page probability map into a quad in photo pixels."""

    name: str
    description: str

    def find_quad(self, page_prob: np.ndarray, image: np.ndarray, options: dict[str, Any],
                  extra: dict[str, Any]) -> Quad:
        """``page_prob``: HxW float32 in [0, 1] at the photo's size; ``image``: the BGR photo;
        ``options``: ``scan.postprocessor_options``; ``extra``: ``corners`` and ``corner_scores``
        (a corner model's decoded heatmap peaks, else None)."""


@runtime_checkable
class Executor(Protocol):
    """Runs independent tasks, e.g. shards of sample indices, and yields their results."""

    name: str
    description: str

    def map(
        self,
        fn: Callable[[Any], Any],
        tasks: Sequence[Any],
        *,
        workers: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple = (),
        options: dict[str, Any] | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(task_index, result)`` as tasks finish, in any order."""


KINDS: dict[str, type] = {
    "source": Source,
    "background": BackgroundProvider,
    "mask": MaskStrategy,
    "compositor": Compositor,
    "backbone": Backbone,
    "postprocessor": PostProcessor,
    "executor": Executor,
}

# hook name -> kind
HOOK_KINDS: dict[str, str] = {
    "register_sources": "source",
    "register_backgrounds": "background",
    "register_mask_strategies": "mask",
    "register_compositors": "compositor",
    "register_backbones": "backbone",
    "register_postprocessors": "postprocessor",
    "register_executors": "executor",
}

