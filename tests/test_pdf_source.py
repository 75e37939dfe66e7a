"""The `pdf` source on tiny PDFs made in the test: seeded page choice, orientation, ink filter,
render size, Debian provenance, damaged files, and prepare on top of it."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from docsynth import config as config_mod
from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.io import read_jsonl
from docsynth.sources.prepare import prepare


def _page(kind: str, w: int = 300, h: int = 420) -> Image.Image:
    if kind == "landscape":
        w, h = h, w
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    if kind == "blank":
        return img
    if kind == "black":
        draw.rectangle([0, 0, w, h], fill="black")
        return img
    for y in range(30, h - 30, 22):  # lines of "text": a few percent ink
        draw.rectangle([30, y, w - 40, y + 4], fill=(20, 20, 20))
    if kind == "red":
        draw.rectangle([0, 0, 60, 60], fill=(255, 0, 0))
    return img


def make_pdf(path: Path, kinds: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pages = [_page(k) for k in kinds]
    pages[0].save(path, "PDF", save_all=True, append_images=pages[1:], resolution=72)
    return path


def _source():
    return plugins.get("source", "pdf")


def test_listing_samples_pages_per_pdf_with_a_seed(tmp_path):
    make_pdf(tmp_path / "a.pdf", ["text"] * 8)
    make_pdf(tmp_path / "sub" / "b.pdf", ["text"] * 3)
    refs = _source().list_documents(options_mod.build(_source(), {"root": str(tmp_path), "seed": 1}))
    by_pdf = {}
    for r in refs:
        by_pdf.setdefault(Path(r.meta["pdf"]).name, []).append(r.meta["page"])
    assert {k: len(v) for k, v in by_pdf.items()} == {"a.pdf": 2, "b.pdf": 2}  # max_pages default 2
    assert refs[0].meta["pages"] == 8 and refs[0].id.startswith("a/p")
    again = _source().list_documents(options_mod.build(_source(), {"root": str(tmp_path), "seed": 1}))
    assert [r.id for r in again] == [r.id for r in refs]
    pages_by_seed = {tuple(r.meta["page"] for r in _source().list_documents(options_mod.build(_source(), {"root": str(tmp_path), "seed": s}))
                           if r.meta["pdf"].endswith("a.pdf")) for s in range(6)}
    assert len(pages_by_seed) > 1  # the seed picks the pages
    everything = _source().list_documents(options_mod.build(_source(), {"root": str(tmp_path), "max_pages": 0}))
    assert len(everything) == 11


def test_orientation_filter(tmp_path):
    make_pdf(tmp_path / "mixed.pdf", ["text", "landscape", "text", "landscape"])
    portrait = _source().list_documents(options_mod.build(_source(), {"root": str(tmp_path), "orientation": "portrait", "max_pages": 0}))
    landscape = _source().list_documents(options_mod.build(_source(), {"root": str(tmp_path), "orientation": "landscape", "max_pages": 0}))
    assert [r.meta["page"] for r in portrait] == [1, 3]
    assert [r.meta["page"] for r in landscape] == [2, 4]
    with pytest.raises(DocsynthError, match="orientation"):
        _source().list_documents(options_mod.build(_source(), {"root": str(tmp_path), "orientation": "square"}))


def test_render_size_colour_and_ink_filter(tmp_path):
    make_pdf(tmp_path / "d.pdf", ["red", "blank", "black"])
    source = _source()
    refs = source.list_documents(options_mod.build(source, {"root": str(tmp_path), "max_pages": 0, "long_side": 200}))
    page = source.load_document(refs[0])
    assert page.image.shape == (200, 143, 3) and page.image.dtype == np.uint8
    b, g, r = page.image[5, 5]
    assert r > 200 and b < 60 and g < 60  # the red square comes out red in BGR order
    for ref in refs[1:]:
        with pytest.raises(DocsynthError, match="ink coverage"):
            source.load_document(ref)


def _debian_tree(root: Path) -> Path:
    """What `dpkg -x texlive-humanities-doc_*.deb` leaves: docs under texlive-doc, the copyright
    file under the package's own name."""
    doc = root / "usr/share/doc"
    (doc / "texlive-humanities-doc").mkdir(parents=True)
    (doc / "texlive-humanities-doc" / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: various\nLicense: LPPL-1.3c\n\nFiles: ednotes/*\nLicense: GPL-2+\n"
        " some text\n\nLicense: LPPL-1.3c\n full text\n")
    with gzip.open(doc / "texlive-humanities-doc" / "Licenses.gz", "wt") as fh:
        fh.write("Licenses for source package texlive-extra\n\nednotes: lppl1.3\n"
                 "texmf-dist/doc/latex/ednotes/*\nother: gpl\ntexmf-dist/doc/latex/other/*\n")
    return make_pdf(doc / "texlive-doc/latex/ednotes/ednotes.pdf", ["text", "text", "blank"])


def _amc_tree(root: Path) -> Path:
    doc = root / "usr/share/doc"
    (doc / "auto-multiple-choice-doc-pdf").mkdir(parents=True)
    (doc / "auto-multiple-choice-doc-pdf" / "copyright").write_text(
        "Files: *\nLicense: GPL-2+\n\nFiles: doc/*\nLicense: CC0-1.0\n")
    return make_pdf(doc / "auto-multiple-choice/auto-multiple-choice.en.pdf", ["text"])


def test_debian_provenance_and_prepare(tmp_path):
    _debian_tree(tmp_path / "debs" / "texlive-humanities-doc")
    _amc_tree(tmp_path / "debs" / "auto-multiple-choice-doc-pdf")
    (tmp_path / "debs" / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    make_pdf(tmp_path / "debs" / "plain.pdf", ["text"])
    refs = _source().list_documents(options_mod.build(_source(), {"root": str(tmp_path / "debs"), "max_pages": 0}))
    assert any("broken.pdf" in p for p in _source().problems)
    ed = [r for r in refs if "ednotes" in r.id]
    assert len(ed) == 3
    meta = ed[0].meta
    assert meta["package"] == "texlive-humanities-doc" and meta["ctan_package"] == "ednotes"
    assert meta["licence"] == "lppl1.3 (CTAN ednotes; Debian texlive-humanities-doc)"
    amc = [r for r in refs if "auto-multiple-choice" in r.id][0].meta
    assert amc["package"] == "auto-multiple-choice-doc-pdf" and "ctan_package" not in amc
    assert amc["licence"] == "Debian auto-multiple-choice-doc-pdf: GPL-2+, CC0-1.0"
    assert meta["doc_path"] == "/usr/share/doc/texlive-doc/latex/ednotes/ednotes.pdf"
    plain = [r for r in refs if "plain" in r.id][0]
    assert "package" not in plain.meta and plain.meta["licence"].startswith("unknown")

    cfg = config_mod.typed({"sources": {
        "mix": {"pdf": "all"}, "max_size": 96, "out": "docs",
        "options": {"pdf": {"root": str(tmp_path / "debs"), "max_pages": 0, "long_side": 160,
                            "ink_min": 0.01, "ink_max": 0.6}}}})
    warnings = []
    summary = prepare(cfg, warn=warnings.append)
    assert summary["documents"] == 4 and summary["sources"]["pdf"]["skipped"] == 1  # the blank page
    assert any("broken.pdf" in w for w in warnings) and any("ink coverage" in w for w in warnings)
    rows = read_jsonl("docs/documents.jsonl")
    row = next(r for r in rows if "ednotes" in r["id"])
    assert row["licence"].startswith("lppl1.3 (CTAN ednotes") and row["meta"]["page"] in (1, 2)
    assert row["meta"]["pdf"].endswith("ednotes.pdf") and row["original"].endswith("ednotes.pdf")
    assert max(row["width"], row["height"]) == 96
    cfg.sources.workers = 2
    cfg.sources.out = "docs2"
    prepare(cfg)
    assert read_jsonl("docs2/documents.jsonl") == rows


def test_missing_pypdfium2_says_how_to_install(tmp_path, monkeypatch):
    make_pdf(tmp_path / "a.pdf", ["text"])
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # import now fails
    with pytest.raises(DocsynthError, match=r"pip install 'docsynth\[pdf\]'"):
        _source().list_documents(options_mod.build(_source(), {"root": str(tmp_path)}))


def test_missing_root_says_what_to_set():
    with pytest.raises(DocsynthError, match="folder of PDFs"):
        _source().list_documents(options_mod.build(_source(), {"root": "nowhere"}))
