"""Source `procedural`: document pages rendered on the fly, no download needed.

Layouts: letter, two-column article, form, invoice/table, receipt, slide with figures.
Text uses Pillow's bundled scalable font and OpenCV's Hershey fonts (plus any TrueType files
given in ``fonts``), so pages look alike on every machine with the same Pillow/OpenCV.
Every page is a pure function of (seed, document index).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from docsynth.config import AT_LEAST_1, F, listing_options
from docsynth.errors import DocsynthError
from docsynth.hookspecs import hookimpl
from docsynth.kinds import DocumentRef, Page
from docsynth.options import Options

LAYOUTS = ("letter", "article", "form", "invoice", "receipt", "slide")
_SYLLABLES = ("an", "re", "to", "in", "de", "con", "ter", "pro", "ment", "al", "ing", "tion",
              "ex", "com", "per", "es", "or", "is", "at", "ver", "sta", "lo", "mi", "ca", "un")
_HERSHEY = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
            cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX)


def _word(rng: np.random.Generator) -> str:
    n = int(rng.integers(1, 4))
    w = "".join(_SYLLABLES[int(i)] for i in rng.integers(len(_SYLLABLES), size=n))
    return w.capitalize() if rng.random() < 0.12 else w


def _words(rng: np.random.Generator, n: int) -> str:
    return " ".join(_word(rng) for _ in range(n))


class _Pen:
    """Draws text with either a Pillow font or an OpenCV Hershey font."""

    def __init__(self, canvas: Image.Image, rng: np.random.Generator, fonts: list[str]):
        self.canvas = canvas
        self.draw = ImageDraw.Draw(canvas)
        self.rng = rng
        self.fonts = fonts
        self.kind = "pil" if rng.random() < 0.6 else "cv"
        self.hershey = _HERSHEY[int(rng.integers(len(_HERSHEY) - 1))]  # script only for titles
        self.ink = tuple(int(v) for v in rng.integers(0, 60, size=3)) if rng.random() < 0.85 else (20, 30, 120)
        self._font_cache: dict[int, Any] = {}
        self.words: list[dict[str, Any]] | None = None  # a list to fill: where each word was drawn
        self._line = 0

    def font(self, size: int):
        if size not in self._font_cache:
            if self.fonts:
                path = self.fonts[int(self.rng.integers(len(self.fonts)))]
                self._font_cache[size] = ImageFont.truetype(path, size)
            else:
                self._font_cache[size] = ImageFont.load_default(size)
        return self._font_cache[size]

    def text(self, xy: tuple[int, int], text: str, size: int, color=None, bold: bool = False) -> int:
        """Draw one line with its top-left at ``xy``; return its width in pixels."""
        color = color or self.ink
        x, y = xy
        if self.kind == "pil":
            font = self.font(size)
            self.draw.text((x, y), text, fill=color, font=font, stroke_width=1 if bold else 0,
                           stroke_fill=color)
            if self.words is not None:
                top, bottom = self.draw.textbbox((x, y), text, font=font, stroke_width=1 if bold else 0)[1::2]
                self._record(text, x, top, bottom, lambda s: self.draw.textlength(s, font=font))
            return int(self.draw.textlength(text, font=font))
        scale = size / 30.0
        thick = max(1, int(round(size / 14)) + (1 if bold else 0))
        arr = np.asarray(self.canvas)
        (w, h), _ = cv2.getTextSize(text, self.hershey, scale, thick)
        buf = arr.copy()
        cv2.putText(buf, text, (x, y + h), self.hershey, scale, color, thick, cv2.LINE_AA)
        self.canvas.paste(Image.fromarray(buf))
        self.draw = ImageDraw.Draw(self.canvas)
        if self.words is not None:
            base = cv2.getTextSize(text, self.hershey, scale, thick)[1]
            self._record(text, x, y - thick / 2, y + h + base + thick / 2,
                         lambda s: cv2.getTextSize(s, self.hershey, scale, thick)[0][0] if s else 0)
        return w

    def _record(self, text: str, x: float, top: float, bottom: float, length) -> None:
        """Add the words of a line drawn at ``x`` (``length``: width of a prefix in pixels) as
        boxes spanning the line's height, clipped to the page; one line per call."""
        w, h = self.canvas.size
        start = 0
        for word in text.split(" "):
            if word:
                x0 = x + length(text[:start])
                x1 = x0 + length(word)
                box = [max(0.0, x0), max(0.0, top), min(float(w), x1), min(float(h), bottom)]
                if box[2] - box[0] > 1 and box[3] - box[1] > 1:
                    self.words.append({"text": word, "line": self._line, "poly": [
                        [box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]]})
            start += len(word) + 1
        self._line += 1

    def paragraph(self, x: int, y: int, width: int, size: int, lines: int, y_max: int) -> int:
        """Fill ``lines`` lines of ragged-right text; return the y after the paragraph."""
        leading = int(size * self.rng.uniform(1.25, 1.6))
        for i in range(lines):
            if y + leading > y_max:
                break
            frac = 1.0 if i < lines - 1 else self.rng.uniform(0.3, 0.9)
            n_words = max(1, int(width * frac / (size * 3.2)))
            text = _words(self.rng, n_words)
            self.text((x, y), text, size)
            y += leading
        return y


def _paper(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    base = np.array([255, 255, 255], dtype=np.float32)
    if rng.random() < 0.35:  # off-white, cream, recycled or coloured paper
        base = base - rng.uniform(0, 35, size=3)
    if rng.random() < 0.06:
        base = np.array(rng.uniform(150, 245, size=3), dtype=np.float32)
    img = np.empty((h, w, 3), dtype=np.float32)
    img[:] = base
    if rng.random() < 0.5:  # faint paper grain
        img += rng.normal(0, rng.uniform(1, 4), size=(h, w, 1)).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _letter(pen: _Pen, w: int, h: int, m: int) -> None:
    rng = pen.rng
    y = m
    if rng.random() < 0.7:  # letterhead with a logo block
        pen.draw.rectangle([m, y, m + w // 8, y + w // 8], fill=tuple(int(v) for v in rng.integers(0, 200, 3)))
        pen.text((m + w // 8 + 15, y + 5), _words(rng, 2).upper(), int(w / 25), bold=True)
        y += w // 8 + 30
    for _ in range(3):
        pen.text((w - m - w // 3, y), _words(rng, 3), int(w / 48))
        y += int(w / 32)
    y += 20
    body = int(w / rng.uniform(42, 60))
    while y < h - m - 4 * body:
        y = pen.paragraph(m, y, w - 2 * m, body, int(rng.integers(3, 8)), h - m) + body


def _article(pen: _Pen, w: int, h: int, m: int) -> None:
    rng = pen.rng
    pen.text((m, m), _words(rng, 5).title(), int(w / 26), bold=True)
    y0 = m + int(w / 14)
    cols = 2 if rng.random() < 0.7 else 1
    gap = int(w * 0.04)
    col_w = (w - 2 * m - gap * (cols - 1)) // cols
    body = int(w / rng.uniform(55, 75))
    for c in range(cols):
        x, y = m + c * (col_w + gap), y0
        while y < h - m - 2 * body:
            if rng.random() < 0.15:  # figure or heading
                fh = int(col_w * rng.uniform(0.3, 0.7))
                if y + fh < h - m:
                    shade = int(rng.integers(120, 230))
                    pen.draw.rectangle([x, y, x + col_w, y + fh], fill=(shade, shade, shade))
                    for _ in range(int(rng.integers(3, 9))):
                        px = x + rng.integers(0, col_w, size=2)
                        py = y + rng.integers(0, fh, size=2)
                        pen.draw.line([(int(px[0]), int(py[0])), (int(px[1]), int(py[1]))],
                                      fill=tuple(int(v) for v in rng.integers(0, 255, 3)), width=2)
                    y += fh + body
                continue
            y = pen.paragraph(x, y, col_w, body, int(rng.integers(4, 12)), h - m) + body // 2


def _table(pen: _Pen, x: int, y: int, width: int, rows: int, cols: int, size: int, y_max: int) -> int:
    rng = pen.rng
    row_h = int(size * 1.9)
    widths = rng.dirichlet(np.ones(cols) * 3) * width
    xs = np.concatenate([[x], x + np.cumsum(widths)]).astype(int)
    header_fill = tuple(int(v) for v in rng.integers(180, 240, 3))
    for r in range(rows):
        top = y + r * row_h
        if top + row_h > y_max:
            rows = r
            break
        if r == 0 and rng.random() < 0.7:
            pen.draw.rectangle([x, top, x + width, top + row_h], fill=header_fill)
        for c in range(cols):
            txt = _word(rng) if (c == 0 or r == 0) else f"{rng.uniform(1, 999):.2f}"
            pen.text((int(xs[c]) + 6, top + int(size * 0.35)), txt, size)
    grid = rng.random() < 0.7
    for r in range(rows + 1):
        if grid or r in (0, 1, rows):
            pen.draw.line([(x, y + r * row_h), (x + width, y + r * row_h)], fill=pen.ink, width=1)
    if grid:
        for xx in xs:
            pen.draw.line([(int(xx), y), (int(xx), y + rows * row_h)], fill=pen.ink, width=1)
    return y + rows * row_h


def _invoice(pen: _Pen, w: int, h: int, m: int) -> None:
    rng = pen.rng
    pen.text((m, m), "INVOICE" if rng.random() < 0.5 else _words(rng, 2).upper(), int(w / 18), bold=True)
    y = m + int(w / 10)
    for _ in range(4):
        pen.text((m, y), _words(rng, 3), int(w / 50))
        pen.text((w // 2 + m, y), _words(rng, 2), int(w / 50))
        y += int(w / 34)
    y += 30
    y = _table(pen, m, y, w - 2 * m, int(rng.integers(6, 18)), int(rng.integers(3, 6)), int(w / 55), h - m - 120)
    pen.text((w - m - w // 3, y + 25), f"Total {rng.uniform(10, 9999):.2f}", int(w / 40), bold=True)
    pen.paragraph(m, y + 90, w - 2 * m, int(w / 70), 3, h - m)


def _form(pen: _Pen, w: int, h: int, m: int) -> None:
    rng = pen.rng
    pen.text((m, m), _words(rng, 3).upper(), int(w / 28), bold=True)
    y = m + int(w / 12)
    size = int(w / 52)
    while y < h - m - 3 * size:
        kind = rng.random()
        if kind < 0.55:  # label + underline field
            lw = pen.text((m, y), _words(rng, 2) + ":", size)
            pen.draw.line([(m + lw + 10, y + size + 2), (w - m, y + size + 2)], fill=pen.ink, width=1)
            if rng.random() < 0.5:  # handwritten-looking answer
                pen.text((m + lw + 25, y - 2), _words(rng, 3), int(size * 1.1), color=(40, 40, 140))
            y += int(size * 2.4)
        elif kind < 0.8:  # check boxes
            x = m
            for _ in range(int(rng.integers(2, 5))):
                pen.draw.rectangle([x, y, x + size, y + size], outline=pen.ink, width=2)
                if rng.random() < 0.4:
                    pen.draw.line([(x + 2, y + size // 2), (x + size // 2, y + size - 2), (x + size, y)],
                                  fill=(30, 30, 150), width=2)
                x += size + 10 + pen.text((x + size + 10, y), _word(rng), size) + 30
            y += int(size * 2.4)
        else:  # boxed text area
            bh = int(size * rng.uniform(3, 7))
            pen.draw.rectangle([m, y, w - m, y + bh], outline=pen.ink, width=1)
            y += bh + size


def _receipt(pen: _Pen, w: int, h: int, m: int) -> None:
    rng = pen.rng
    pen.kind = "cv"
    pen.hershey = cv2.FONT_HERSHEY_PLAIN if rng.random() < 0.5 else cv2.FONT_HERSHEY_SIMPLEX
    size = int(w / 20)
    y = m
    pen.text((w // 4, y), _words(rng, 2).upper(), int(size * 1.3), bold=True)
    y += int(size * 2.5)
    while y < h - m - size * 2:
        pen.text((m, y), _words(rng, int(rng.integers(1, 3))).upper(), size)
        pen.text((w - m - int(size * 3.2), y), f"{rng.uniform(0.5, 99):.2f}", size)
        y += int(size * 1.6)
        if rng.random() < 0.08:
            pen.draw.line([(m, y), (w - m, y)], fill=pen.ink, width=1)
            y += size


def _slide(pen: _Pen, w: int, h: int, m: int) -> None:
    rng = pen.rng
    pen.text((m, m), _words(rng, 4).title(), int(w / 20), bold=True)
    y = m + int(w / 8)
    for _ in range(int(rng.integers(1, 4))):
        fh = int((h - y - m) * rng.uniform(0.2, 0.45))
        color = tuple(int(v) for v in rng.integers(0, 255, 3))
        x2 = w - m
        if rng.random() < 0.5:  # bar chart
            n = int(rng.integers(3, 9))
            bw = (x2 - m) // (2 * n)
            for i in range(n):
                bh = int(fh * rng.uniform(0.1, 1.0))
                pen.draw.rectangle([m + 2 * i * bw, y + fh - bh, m + (2 * i + 1) * bw, y + fh], fill=color)
        else:  # photo-like block
            block = rng.integers(0, 255, size=(8, 8, 3)).astype(np.uint8)
            block = cv2.resize(block, (x2 - m, fh), interpolation=cv2.INTER_CUBIC)
            pen.canvas.paste(Image.fromarray(block), (m, y))
            pen.draw = ImageDraw.Draw(pen.canvas)
        y += fh + 20
        y = pen.paragraph(m, y, w - 2 * m, int(w / 50), int(rng.integers(1, 4)), h - m) + 10
        if y > h - m - 50:
            break


_DRAW = {"letter": _letter, "article": _article, "form": _form, "invoice": _invoice,
         "receipt": _receipt, "slide": _slide}


def render_page(seed: int, index: int, layout: str | None = None, long_side: int = 960,
                fonts: list[str] | None = None, words: list[dict[str, Any]] | None = None) -> np.ndarray:
    """Render one page (BGR). A pure function of its arguments. ``words``, a list, receives
    every word drawn (``{"text", "line", "poly"}``, page pixels; see ``Page.words``)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 0x9A6E]))
    layout = layout or LAYOUTS[int(rng.choice(len(LAYOUTS), p=[0.25, 0.2, 0.15, 0.2, 0.1, 0.1]))]
    if layout == "receipt":
        aspect = rng.uniform(2.2, 3.5)
    else:
        aspect = float(rng.choice([1.414, 1.294, 1.545])) * rng.uniform(0.98, 1.02)
    h = int(long_side * rng.uniform(0.8, 1.1))
    w = int(h / aspect)
    landscape = layout == "slide" and rng.random() < 0.7
    if landscape:
        w, h = h, w
    canvas = _paper(rng, w, h)
    pen = _Pen(canvas, rng, fonts or [])
    pen.words = words
    margin = int(min(w, h) * rng.uniform(0.05, 0.11))
    _DRAW[layout](pen, w, h, margin)
    return cv2.cvtColor(np.asarray(pen.canvas), cv2.COLOR_RGB2BGR)


class ProceduralSource:
    name = "procedural"
    description = "rendered pages (letters, articles, forms, invoices, receipts, slides); offline"
    licence = "CC0-1.0 (generated)"
    homepage = "https://github.com/docsynth/docsynth"
    options = {**listing_options(),
               "layout": F((str, None), None, "one layout only (null: all)", choices=LAYOUTS),
               "long_side": F(int, 960, "page size, px on the longer side", **AT_LEAST_1),
               "fonts": F(list, [], "TrueType files to draw with (default: OpenCV's fonts)")}

    def list_documents(self, options: Options) -> list[DocumentRef]:
        count, seed, layout = int(options.count), int(options.seed), options.layout  # layout: a choice, checked
        fonts = [str(p) for p in options.fonts]
        for font in fonts:
            if not Path(font).is_file():
                    raise DocsynthError(f"procedural source: font file {font} not found (source options 'fonts')")
        meta = {"seed": seed, "layout": layout, "long_side": int(options.long_side),
                "fonts": fonts, "licence": self.licence}
        return [DocumentRef(id=f"procedural-{seed}-{i:06d}", source=self.name, meta={**meta, "index": i})
                for i in range(count)]

    def load_document(self, ref: DocumentRef) -> Page:
        m = ref.meta
        words: list[dict[str, Any]] = []
        image = render_page(m["seed"], m["index"], m["layout"], m["long_side"], m["fonts"], words)
        return Page(image=image, words=words)


@hookimpl
def register_sources(register):
    register(ProceduralSource())
