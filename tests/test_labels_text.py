"""Text labels: sources hand over words on the flat page, generate carries them into the photo
(text/<id>.jsonl), the CLI and the tar shards carry the labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.generate.dewarp import dewarp_arrays, lookup_uv
from docsynth.generate.stream import compose_one
from docsynth.generate.words import group_lines, word_records
from docsynth.kinds import Page
from tests.helpers import generate_tiny, tree_bytes
from tests.test_labels import CASES, background


def procedural_page(index=0, long_side=400) -> Page:
    source = plugins.get("source", "procedural")
    ref = source.list_documents(options_mod.build(source, {"count": index + 1, "seed": 3, "long_side": long_side,
                                                           "layout": "letter"}))[index]
    return plugins.get("mask", "fullpage").make_mask(source.load_document(ref))


def test_procedural_words_cover_their_ink_and_do_not_change_the_page():
    from docsynth_sources.procedural import render_page

    page = procedural_page()
    assert len(page.words) > 40
    assert (render_page(3, 0, "letter", 400) == page.image).all()  # recording words draws nothing
    grey = page.image.min(axis=2)
    inked = 0
    for w in page.words:
        (x0, y0), (x1, y1) = np.floor(w["poly"][0]).astype(int), np.ceil(w["poly"][2]).astype(int)
        assert 0 <= x0 < x1 <= page.image.shape[1] and 0 <= y0 < y1 <= page.image.shape[0]
        inked += grey[y0:y1, x0:x1].min() < 128
    assert inked >= 0.9 * len(page.words)
    assert len({w["line"] for w in page.words}) > 5


@pytest.mark.parametrize("name,options", CASES)
def test_words_photo_polygons_look_up_their_flat_polygons_in_uv(name, options):
    errs = []
    for seed in range(2):
        page = procedural_page(seed)
        s = compose_one(name, page, background(seed), np.random.default_rng(seed), options)
        a = dewarp_arrays(s, s.geometry)
        records = word_records(s.geometry, a["visible"])
        assert len(records) == len(page.words)
        if not s.geometry.projective:
            assert all(len(r["photo_poly"]) == 16 for r in records)  # extra points along each edge
        for r in records:
            assert len(r["flat_poly"]) == len(r["photo_poly"])
            assert 0 <= r["visible_frac"] <= 1
            got = lookup_uv(a["uv"].astype(np.float64), np.asarray(r["photo_poly"]))
            ok = ~np.isnan(got[:, 0])
            errs.extend(np.abs(got[ok] - np.asarray(r["flat_poly"])[ok]).max(axis=1))
        shown = [r for r in records if r["visible_frac"] == 1]
        assert shown and not any(r["truncated"] or r["occluded"] for r in shown)
    assert np.percentile(errs, 95) <= 0.004


def test_truncated_and_occluded_words_are_flagged():
    page = procedural_page()
    opts = {"size": [240, 320], "landscape_p": 0, "negative_p": 0, "truncate_p": 1.0, "pipeline": [
        {"step": "occlusion", "p": 1.0}], "curl_p": 0, "fold_p": 0, "squash_p": 0, "card_p": 0, "receipt_p": 0}
    flags = {"truncated": 0, "occluded": 0}
    for seed in range(6):
        s = compose_one("realistic", page, background(seed), np.random.default_rng(seed), opts)
        records = word_records(s.geometry, dewarp_arrays(s, s.geometry)["visible"])
        for r in records:
            flags["truncated"] += r["truncated"]
            flags["occluded"] += r["occluded"]
            if r["visible_frac"] < 1:
                assert r["truncated"] or r["occluded"]
    assert flags["truncated"] and flags["occluded"]


def test_lines_come_from_the_source_or_from_grouping_words():
    def box(x, y):
        return {"text": "w", "poly": [[x, y], [x + 10, y], [x + 10, y + 8], [x, y + 8]]}
    words = [box(0, 0), box(14, 1), box(30, 0), box(0, 20), box(15, 21)]
    assert group_lines(words) == [0, 0, 0, 1, 1]
    assert group_lines([{**w, "line": 7} for w in words]) == [7] * 5


def test_funsd_and_docvqa_annotations_become_words(tmp_path):
    from docsynth_sources.docvqa import docvqa_words
    from docsynth_sources.funsd import funsd_words

    funsd = {"form": [{"box": [10, 10, 90, 20], "words": [{"box": [10, 10, 40, 20], "text": "Date:"},
                                                          {"box": [45, 10, 90, 20], "text": "1972"},
                                                          {"box": [1, 2], "text": "bad"}]}]}
    assert [w["text"] for w in funsd_words(funsd)] == ["Date:", "1972"]
    assert funsd_words(funsd)[0]["poly"] == [[10, 10], [40, 10], [40, 20], [10, 20]]
    ocr = {"recognitionResults": [{"lines": [{"text": "To: Mr", "words": [
        {"boundingBox": [50, 50, 80, 50, 80, 60, 50, 60], "text": "To:"},
        {"boundingBox": [0, 0, 30, 0, 30, 10, 0, 10], "text": "cut"}]}]}]}
    words = docvqa_words(ocr, 42, 200, 200)
    assert words == [{"text": "To:", "poly": [[8, 8], [38, 8], [38, 18], [8, 18]], "line": 0}]


def _text_pdf(path: Path) -> Path:
    """A one-page PDF with two lines of Helvetica text (300 x 400 pt)."""
    content = b"BT /F1 24 Tf 40 300 Td (Hello world) Tj 0 -60 Td (second line here) Tj ET"
    objects = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
               b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 400]/Resources<</Font<</F1 4 0 R>>>>/Contents 5 0 R>>",
               b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
               b"<</Length %d>>stream\n" % len(content) + content + b"\nendstream"]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(out)
    return path


def test_pdf_pages_carry_their_words(tmp_path):
    _text_pdf(tmp_path / "t.pdf")
    source = plugins.get("source", "pdf")
    ref = source.list_documents(options_mod.build(source, {"root": str(tmp_path), "long_side": 400, "ink_min": 0.0}))[0]
    page = source.load_document(ref)
    assert [w["text"] for w in page.words] == ["Hello", "world", "second", "line", "here"]
    assert [w["line"] for w in page.words] == [0, 0, 1, 1, 1]
    grey = page.image.min(axis=2)
    for w in page.words:
        (x0, y0), (x1, y1) = np.floor(w["poly"][0]).astype(int), np.ceil(w["poly"][2]).astype(int)
        assert 35 <= x0 < x1 < 300 and grey[y0:y1, x0:x1].min() < 100  # the box holds the glyphs
        if w["text"] in ("Hello", "second"):  # nothing drawn left of a line's first word
            assert (grey[y0:y1, :x0 - 2] > 200).all()


def test_generate_with_labels_keeps_images_and_writes_label_files(tmp_path, cli):
    base = generate_tiny(str(tmp_path / "plain"), seed=3, count=4)
    assert base["samples"] == 4
    result = cli("generate", "--count", "4", "--out", str(tmp_path / "lab"), "--labels", "dewarp,text",
                 "--seed", "3", "--config", str(_tiny_config(tmp_path)))
    assert result.exit_code == 0, result.stderr
    plain, lab = tree_bytes(tmp_path / "plain"), tree_bytes(tmp_path / "lab")
    for name, data in plain.items():
        if name.startswith(("images", "masks")):
            assert lab[name] == data  # labels never change the pictures
    rows = [json.loads(line) for line in (tmp_path / "lab" / "manifest.jsonl").read_text().splitlines()]
    for row in rows:
        npz = np.load(tmp_path / "lab" / row["dewarp"])
        assert npz["uv"].dtype == np.float32 and npz["uv"].shape == (row["height"], row["width"], 2)
        assert npz["bm"].shape == (448, 448, 2) and npz["visible"].dtype == np.uint8
        assert (tmp_path / "lab" / row["text"]).is_file()
    assert sum(len((tmp_path / "lab" / r["text"]).read_text().splitlines()) for r in rows) > 0
    assert "labels:" in (tmp_path / "lab" / "run.yaml").read_text()
    assert "labels:" not in (tmp_path / "plain" / "run.yaml").read_text()  # unchanged without labels


def _tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text("generate:\n  documents_count: 3\n  backgrounds_count: 3\n  source_options: {long_side: 120}\n"
                    "  background_options: {size: [120, 90]}\n  compositor_options: {size: [64, 48]}\n")
    return path


def test_tar_shards_carry_the_labels(tmp_path):
    from docsynth.formats.tarshards import iter_samples

    generate_tiny(str(tmp_path / "t"), seed=2, count=3, shard_format="tar", labels=["dewarp", "text"])
    samples = list(iter_samples(tmp_path / "t"))
    assert len(samples) == 3
    for s in samples:
        assert set(s["labels"]) == {"dewarp.npz", "text.jsonl"}
        assert s["meta"]["dewarp"] == f"{s['id']}.dewarp.npz"


def test_bad_labels_are_one_line_and_folder_pages_without_words_are_said_once(tmp_path, cli):
    result = cli("generate", "--labels", "depth", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert "generate.labels" in result.stderr and "dewarp, text" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    docs = tmp_path / "docs"
    docs.mkdir()
    import cv2

    for i in range(2):
        cv2.imwrite(str(docs / f"p{i}.png"), np.full((80, 60, 3), 230, np.uint8))
    result = cli("generate", "--documents", str(docs), "--count", "4", "--out", str(tmp_path / "y"),
                 "--labels", "text", "--config", str(_tiny_config(tmp_path)))
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("come without words") == 1


def test_labels_are_typed_at_config_load_with_file_and_line(tmp_path):
    from docsynth import config
    from docsynth.errors import DocsynthError

    assert config.load(None).generate.labels == []
    path = tmp_path / "bad.yaml"
    path.write_text("generate:\n  labels: [dewarp, depth]\n")
    with pytest.raises(DocsynthError, match=r"bad.yaml:2: 'generate.labels' is \['dewarp', 'depth'\], expected a "
                                            r"list of some of dewarp, text"):
        config.load(path)
    path.write_text("generate:\n  labels: [text, dewarp]\n")
    assert config.load(path).generate.labels == ["text", "dewarp"]


def test_prepare_and_resize_keep_words_on_their_page(tmp_path):
    from docsynth import config
    from docsynth.io import read_jsonl
    from docsynth.sources.prepare import prepare, resize_folder

    cfg = config.load(None, {"sources.mix": {"procedural": 2}, "sources.out": str(tmp_path / "docs"),
                             "sources.max_size": 300, "sources.options": {"procedural": {"long_side": 600}}})
    prepare(cfg)
    rows = read_jsonl(tmp_path / "docs" / "documents.jsonl")
    source = plugins.get("source", "procedural")
    for row in rows:
        ref = next(r for r in source.list_documents(options_mod.build(source, {"count": 2, "seed": cfg.seed,
                                                                                "long_side": 600}))
                   if r.id == row["source_id"])
        full = source.load_document(ref)
        f = (row["width"] / full.image.shape[1], row["height"] / full.image.shape[0])
        assert len(row["words"]) == len(full.words) > 0
        assert np.allclose(row["words"][3]["poly"], np.asarray(full.words[3]["poly"]) * f, atol=0.01)
    resize_folder(tmp_path / "docs", tmp_path / "small", 150)
    small = read_jsonl(tmp_path / "small" / "documents.jsonl")
    for row, before in zip(small, rows, strict=False):
        f = (row["width"] / before["width"], row["height"] / before["height"])
        assert np.allclose(row["words"][0]["poly"], np.asarray(before["words"][0]["poly"]) * f, atol=0.01)
    # generate reads them back onto the page
    from docsynth.generate.pools import DocumentPool

    pool = DocumentPool.from_config(config.load(None, {"generate.documents": str(tmp_path / "small")}).generate, 0)
    assert pool.load(0).words == small[0]["words"]
