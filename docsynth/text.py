"""Numbers in messages: a comparison printed with too few digits reads as nonsense."""

from __future__ import annotations


def below(value: float, limit: float) -> str:
    """``value`` (known to be below ``limit``) with just enough decimals that it reads below it:
    0.8496 against 0.85 gives "0.8496", not "0.85" ("IoU 0.85 < 0.85")."""
    for digits in range(2, 8):
        shown = f"{value:.{digits}f}"
        if float(shown) < limit:
            return shown
    return repr(value)
