"""Checks of a plugin's options that only the plugin can make: one sample, before any work.

A plugin's declared options are typed, but a type cannot say that
``compositor_options: {size: [192]}`` lacks a height. Composing one small sample with the
options, before the first shard (or the first stage of ``docsynth run``), turns that into one
line naming the key and the plugin instead of a traceback after minutes of work.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.generate.dewarp import require_geometry
from docsynth.geometry import page_corners
from docsynth.kinds import Page


def _test_page() -> Page:
    """A plain 150x200 page with text-like lines (deterministic, no files)."""
    image = np.full((200, 150, 3), 235, np.uint8)
    image[20:180:12, 15:135] = 40
    return Page(image=image, mask=np.full((200, 150), 255, np.uint8), corners=page_corners(150, 200))


def compositor_problem(name: str, options: dict[str, Any], key: str = "generate.compositor_options") -> str | None:
    """None when compositor ``name`` makes a sample with ``options``, else what went wrong."""
    compositor = plugins.get("compositor", name)
    background = np.random.default_rng(0).integers(60, 200, (240, 320, 3), dtype=np.uint8)
    try:
        built = options_mod.build(compositor, options, key)
        sample = compositor.compose(_test_page(), background, np.random.default_rng(0), built)
    except DocsynthError as exc:
        return str(exc)
    except Exception as exc:
        return (f"'{key}': compositor {name!r} ({plugins.host().describe('compositor', name)}) cannot make a "
                f"sample with {options!r}: {type(exc).__name__}: {exc}")
    image, mask = getattr(sample, "image", None), getattr(sample, "mask", None)
    if not (isinstance(image, np.ndarray) and isinstance(mask, np.ndarray) and image.ndim == 3
            and mask.shape == image.shape[:2]):
        return (f"compositor {name!r} ({plugins.host().describe('compositor', name)}) returned a sample whose "
                "image and mask do not match; report it to the plugin's authors")
    return None


def labels_problem(name: str, options: dict[str, Any], labels: list[str]) -> str | None:
    """None when compositor ``name`` reports the page geometry that ``generate.labels`` needs
    (checked on one sample with ``options``), else the line saying it does not."""
    if not labels:
        return None

    background = np.random.default_rng(0).integers(60, 200, (240, 320, 3), dtype=np.uint8)
    try:
        compositor = plugins.get("compositor", name)
        built = options_mod.build(compositor, options, "generate.compositor_options")
        sample = compositor.compose(_test_page(), background, np.random.default_rng(0), built)
        if sample.corners is not None:  # a negative has no page to report
            require_geometry(sample, name)
    except DocsynthError as exc:
        return str(exc)
    except Exception:
        return None  # compositor_problem reports compositors that fail outright
    return None
