"""Source `pdf`: pages of any folder of PDFs, rendered with pypdfium2 (Apache-2.0/BSD).

Listing opens every PDF once, reads its page count and the sizes of a few seeded candidate
pages (no rendering), and keeps at most ``max_pages`` pages per PDF whose orientation fits;
variety comes from many PDFs rather than many pages of one manual. Rendering happens in
``load_document``, which also applies the ink-coverage filter (the share of pixels darker than
200): a nearly blank page or a full-page picture raises, and ``sources prepare`` skips it,
counts it and takes the next candidate.

Options: ``root`` (folder, searched recursively), ``seed``, ``max_pages`` (default 2; 0 = all),
``orientation`` (portrait, landscape, any), ``long_side`` (render size in pixels, default 1280),
``ink_min``/``ink_max`` (default 0.01/0.60), ``licence`` (for PDFs with no Debian metadata).

Words (text labels): pdfium's text page gives each character's box; characters between spaces
make a word, in the rendered page's pixels (rotated pages get none).

Provenance: each page records its PDF path and 1-based page number. Under a Debian doc tree
(``/usr/share/doc/<package>/`` or a ``dpkg -x`` of a .deb) it also records the package, the
licences named in its ``debian/copyright`` file and, for TeX Live docs, the CTAN package.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth.config import F, listing_options
from docsynth.errors import DocsynthError
from docsynth.hookspecs import hookimpl
from docsynth.kinds import DocumentRef, Page
from docsynth.options import Options
from docsynth_sources._common import dataset_root

ORIENTATIONS = ("portrait", "landscape", "any")
INK_LEVEL = 200  # a pixel darker than this (grey level) counts as ink


def _pdfium():
    try:
        import pypdfium2  # optional extra [pdf]
    except ImportError:
        raise DocsynthError("the pdf source needs pypdfium2: pip install 'docsynth[pdf]'") from None
    return pypdfium2


def _fits(width: float, height: float, orientation: str) -> bool:
    if orientation == "portrait":
        return height >= width
    if orientation == "landscape":
        return width > height
    return True


@lru_cache(maxsize=256)
def _copyright_licences(path: str) -> str | None:
    """The licence names a Debian ``copyright`` file mentions (DEP-5 ``License:`` lines)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    names: list[str] = []
    for m in re.finditer(r"^License:[ \t]*(\S[^\n]*)", text, flags=re.MULTILINE):
        name = m.group(1).strip()
        if name not in names:
            names.append(name)
    if not names:
        return None
    return ", ".join(names[:8]) + (f" (+{len(names) - 8} more)" if len(names) > 8 else "")


@lru_cache(maxsize=64)
def _texlive_licences(path: str) -> dict[str, str]:
    """CTAN package -> licence from a TeX Live ``Licenses.gz`` (``name: lppl`` header lines)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return {}
    return {m.group(1): m.group(2) for m in re.finditer(r"^([\w.+-]+): ?(\S+)$", text, flags=re.MULTILINE)}


@lru_cache(maxsize=256)
def _tree_package(tree: str) -> str | None:
    """The package a ``dpkg -x`` tree was unpacked from: the one doc folder with a copyright file."""
    owners = [p.parent.name for p in Path(tree, "usr/share/doc").glob("*/copyright")]
    return owners[0] if len(owners) == 1 else None


def debian_provenance(pdf: Path) -> dict[str, Any]:
    """Package, licences and CTAN package of a PDF under a Debian doc tree ({} elsewhere)."""
    parts = pdf.resolve().parts
    for i in range(len(parts) - 3):
        if parts[i:i + 3] == ("usr", "share", "doc") and i + 3 < len(parts) - 1:
            tree = Path(*parts[:i]) if i else Path("/")
            doc_dir = parts[i + 3]
            package = _tree_package(str(tree)) or doc_dir
            out: dict[str, Any] = {"package": package, "doc_path": "/" + "/".join(parts[i:])}
            docs = tree / "usr/share/doc"
            for owner in (package, doc_dir):
                if (docs / owner / "copyright").is_file():
                    out["copyright"] = str(docs / owner / "copyright")
                    licences = _copyright_licences(out["copyright"])
                    out["licence"] = f"Debian {package}: " + (licences or f"see /usr/share/doc/{owner}/copyright")
                    break
            if doc_dir == "texlive-doc" and i + 5 < len(parts) - 1:
                ctan = out["ctan_package"] = parts[i + 5]  # texlive-doc/<format>/<ctan package>/...
                licence = _texlive_licences(str(docs / package / "Licenses.gz")).get(ctan)
                if licence:  # TeX Live lists each CTAN package's licence
                    out["licence"] = f"{licence} (CTAN {ctan}; Debian {package})"
            return out
    return {}


class PdfSource:
    name = "pdf"
    description = "pages of a folder of PDFs rendered with pypdfium2; options: root, max_pages, orientation, long_side, ink_min, ink_max"
    options = {**listing_options(),
               "max_pages": F(int, 2, "seeded pages per PDF (0: all)", low=0),
               "orientation": F(str, "any", "pages kept", choices=("portrait", "landscape", "any")),
               "long_side": F(int, 1280, "render size, px on the longer side", low=16),
               "ink_min": F(float, 0.01, "least share of dark pixels (blank pages are skipped)", low=0, high=1),
               "ink_max": F(float, 0.60, "most share of dark pixels (photos are skipped)", low=0, high=1),
               "licence": F((str, None), None, "licence recorded for every page")}
    licence = "per PDF (recorded per page; Debian doc packages: from debian/copyright)"
    homepage = "https://pypi.org/project/pypdfium2/"
    default_mask = "fullpage"

    def __init__(self) -> None:
        self.problems: list[str] = []  # PDFs the last listing could not open
        self._open: tuple[tuple[str, int], Any] | None = None  # the last PDF rendered from, kept open

    def _options(self, options: Options) -> dict[str, Any]:
        o = {"max_pages": int(options.max_pages), "orientation": str(options.orientation),
             "long_side": int(options.long_side), "ink_min": float(options.ink_min),
             "ink_max": float(options.ink_max), "seed": int(options.seed)}
        if not 0 <= o["ink_min"] <= o["ink_max"] <= 1:
            raise DocsynthError("sources.options.pdf.ink_min/ink_max: need 0 <= ink_min <= ink_max <= 1")
        return o

    def list_documents(self, options: Options) -> list[DocumentRef]:
        pdfium = _pdfium()
        root = dataset_root(self.name, options, hint="set option 'root' (sources.options.pdf.root) to a folder of PDFs")
        o = self._options(options)
        self.problems = []
        refs: list[DocumentRef] = []
        for path in sorted(p for p in root.rglob("*") if p.suffix.lower() == ".pdf" and p.is_file()):
            rel = path.relative_to(root).as_posix()
            try:
                doc = pdfium.PdfDocument(str(path))
            except Exception as exc:  # PdfiumError and friends: damaged, encrypted
                self.problems.append(f"{path}: cannot open ({exc})")
                continue
            try:
                n = len(doc)
                # pages of one PDF are drawn from their own stream: adding a PDF to the folder
                # changes nothing for the others
                rng = np.random.default_rng(np.random.SeedSequence([o["seed"], zlib.crc32(rel.encode())]))
                chosen = []
                for index in rng.permutation(n):
                    if o["max_pages"] and len(chosen) >= o["max_pages"]:
                        break
                    w, h = doc.get_page_size(int(index))
                    if _fits(w, h, o["orientation"]):
                        chosen.append((int(index), w, h))
            except Exception as exc:
                self.problems.append(f"{path}: cannot read pages ({exc})")
                continue
            finally:
                doc.close()
            provenance = debian_provenance(path)
            for index, w, h in sorted(chosen):
                meta = {"pdf": str(path), "page": index + 1, "pages": n, "page_size_pt": [round(w, 1), round(h, 1)],
                        "long_side": o["long_side"], "ink_min": o["ink_min"], "ink_max": o["ink_max"],
                        "orientation": o["orientation"], **provenance}
                meta.setdefault("licence", options.get("licence") or "unknown (see the PDF)")
                refs.append(DocumentRef(id=f"{rel[:-4]}/p{index + 1:04d}", source=self.name, path=str(path),
                                        meta=meta))
        return refs

    def _document(self, path: str):
        # keyed by process too: a forked worker must not share its parent's open handle
        key = (path, os.getpid())
        if self._open is None or self._open[0] != key:
            if self._open is not None and self._open[0][1] == os.getpid():
                self._open[1].close()
            self._open = (key, _pdfium().PdfDocument(path))
        return self._open[1]

    def load_document(self, ref: DocumentRef) -> Page:
        m = ref.meta
        try:
            doc = self._document(ref.path)
            page = doc[m["page"] - 1]
            w, h = page.get_size()
            bitmap = page.render(scale=m["long_side"] / max(w, h), may_draw_forms=False)
            image = np.ascontiguousarray(bitmap.to_numpy()[:, :, :3])  # BGR
            words = pdf_words(page, image.shape[1] / w, image.shape[0] / h)
            page.close()
        except DocsynthError:
            raise
        except Exception as exc:
            raise DocsynthError(f"{ref.path}: page {m['page']} cannot be rendered ({exc})") from None
        ih, iw = image.shape[:2]
        if not _fits(iw, ih, m.get("orientation", "any")):  # /Rotate can turn a page
            raise DocsynthError(f"{ref.path}: page {m['page']} is not {m['orientation']} once rendered")
        ink = float((cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) < INK_LEVEL).mean())
        if not m["ink_min"] <= ink <= m["ink_max"]:
            raise DocsynthError(f"{ref.path}: page {m['page']} ink coverage {ink:.3f} outside "
                                f"[{m['ink_min']}, {m['ink_max']}] (ink filter)")
        return Page(image=image, words=words)


def pdf_words(page: Any, sx: float, sy: float) -> list[dict[str, Any]] | None:
    """The page's words from pdfium's text page: characters between whitespace (or a jump to
    another line) make a word, boxed by their tight character boxes, in rendered pixels
    (``sx``, ``sy``: pixels per point). None for rotated pages (no words rather than wrong ones)."""
    import pypdfium2.raw as pdfium_c  # optional extra [pdf]

    if page.get_rotation() % 360:
        return None
    left, _, _, top = page.get_cropbox()
    text = page.get_textpage()
    try:
        words: list[dict[str, Any]] = []
        chars: list[tuple[str, tuple[float, float, float, float]]] = []
        line, broken = 0, False

        def flush() -> None:
            if chars:
                boxes = np.array([b for _, b in chars])
                x0, y1 = (boxes[:, 0].min() - left) * sx, (top - boxes[:, 1].min()) * sy
                x2, y0 = (boxes[:, 2].max() - left) * sx, (top - boxes[:, 3].max()) * sy
                if x2 - x0 > 0.5 and y1 - y0 > 0.5:
                    words.append({"text": "".join(c for c, _ in chars), "line": line, "poly": [
                        [round(x0, 2), round(y0, 2)], [round(x2, 2), round(y0, 2)],
                        [round(x2, 2), round(y1, 2)], [round(x0, 2), round(y1, 2)]]})
                chars.clear()

        for i in range(text.count_chars()):
            ch = chr(pdfium_c.FPDFText_GetUnicode(text.raw, i) or 32)
            if ch.isspace() or ch in "\x00\ufffe\uffff":
                flush()
                if ch in "\r\n" and not broken:  # \r\n is one break
                    line, broken = line + 1, True
                continue
            broken = False
            box = text.get_charbox(i)
            if chars and abs(box[1] - chars[-1][1][1]) > 0.6 * max(1.0, chars[-1][1][3] - chars[-1][1][1]):
                flush()  # a new baseline without a line break: another line
                line += 1
            chars.append((ch, box))
        flush()
        return words
    finally:
        text.close()


@hookimpl
def register_sources(register):
    register(PdfSource())
