"""HTML building blocks of the report: escaping, inline images (``data:`` URIs), tables, notes.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Iterable
from typing import Any

import cv2
import numpy as np

from docsynth.errors import DocsynthError


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def prose(value: Any) -> str:
    """Escaped text in which `backticks` (how messages quote commands) become <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", esc(value))


def image_uri(image: np.ndarray, fmt: str = "jpeg", quality: int = 85) -> str:
    if fmt == "png":
        ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    else:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DocsynthError("could not encode a report image")
    return f"data:image/{fmt};base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def img(image: np.ndarray, alt: str, fmt: str = "jpeg") -> str:
    h, w = image.shape[:2]
    return f'<img src="{image_uri(image, fmt)}" width="{w}" height="{h}" alt="{esc(alt)}">'


def table(headers: list[str], rows: Iterable[Iterable[Any]], numeric: bool = True) -> str:
    head = "".join(f"<th>{prose(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for value in row:
            cls = ' class="num"' if numeric and isinstance(value, (int, float)) and not isinstance(value, bool) else ""
            cells.append(f"<td{cls}>{prose(fmt_value(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def fmt_value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def missing(text: str) -> str:
    return f'<p class="missing">{prose(text)}</p>'
