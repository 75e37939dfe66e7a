"""Documented hard caps on sizes and counts (README, "Limits"), so that a typo cannot ask for
terabytes, and the checks of values no range can express: NaN and infinities, and pixel sizes
in plugins' free-form options. The config check applies them when the config loads, before
any work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

MAX_SIDE = 8192  # pixels, any side of an image docsynth makes (8192 x 8192 RGB is 200 MB)
MAX_ITEMS = 10_000_000  # samples, documents, backgrounds in one run


def non_finite(value: Any) -> bool:
    """A NaN or an infinity in a number or a list (of lists) of numbers."""
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, list) and any(map(non_finite, value))


def pixel_problem(key: str, value: Any) -> str | None:
    """What a pixel-size option should be, when ``value`` is not that (else None): ``size`` and
    ``*_size`` lists are [width, height], ``sizes`` a list of them, ``*_side`` one side; each
    side from 1 to MAX_SIDE."""
    def side_ok(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE

    def pair_ok(v: Any) -> bool:
        return isinstance(v, (list, tuple)) and len(v) == 2 and all(map(side_ok, v))

    pair = f"[width, height] in pixels, each from 1 to {MAX_SIDE}"
    if (key == "size" or key.endswith("_size")) and isinstance(value, (list, tuple)):
        return None if pair_ok(value) else pair
    if key == "sizes" and isinstance(value, (list, tuple)):
        return None if all(map(pair_ok, value)) else f"a list of {pair}"
    if key.endswith("_side") and isinstance(value, (int, float)) and not isinstance(value, bool):
        # 0 often means "keep the size" (max_side)
        return None if value == 0 or side_ok(value) else f"an integer from 0 to {MAX_SIDE} (pixels)"
    return None


def free_form_problems(options: dict[str, Any], path: tuple[str, ...], where: Callable[[tuple[str, ...]], str],
                       top: bool = True) -> list[str]:
    """Problems of a plugin's free-form options, one line each (``where`` gives file:line).
    By convention 'p' and '*_p' are probabilities, and at the top of a plugin's options 'size'
    / '*_size' ([width, height]), 'sizes' and '*_side' are pixels (steps' nested 'size'
    entries are shares of the frame); no number may be NaN or infinite."""
    problems = []
    for key, value in options.items():
        key_path = path + (str(key),)
        said = f"{where(key_path)}: '{'.'.join(key_path)}' is {value!r}, expected"
        if non_finite(value):
            problems.append(f"{said} finite numbers")
        elif top and pixel_problem(str(key), value) is not None:
            problems.append(f"{said} {pixel_problem(str(key), value)}")
        elif isinstance(value, dict):
            problems += free_form_problems(value, key_path, where, top=False)
        elif (key == "p" or str(key).endswith("_p")) and not (
                isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1):
            problems.append(f"{said} a probability from 0 to 1")
    return problems
