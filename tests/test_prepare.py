"""`docsynth sources prepare` and `docsynth resize`: the reference mix logic on local fixtures
(counts, seed, DocVQA crop, resize, masks), determinism, resume, safety, and generate on the result."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from sources_fixtures import docvqa_archives, funsd_zip, iam_archives, kaggle_archive, page_png, smartdoc_photo

from docsynth import config as config_mod
from docsynth.errors import DocsynthError
from docsynth.geometry import quad_mask
from docsynth.io import read_jsonl
from docsynth.kinds import Page
from docsynth.sources.prepare import parse_mix, prepare
from docsynth.sources.store import import_data

PHOTO_QUAD = [[110, 40], [300, 55], [290, 270], [95, 255]]  # where smartdoc_photo(0) puts the page

CONFIG = {
    "seed": 42,
    "sources": {
        # the reference mix, scaled down: DocVQA val+test, IAM formsE-H, all Kaggle folders,
        # FUNSD, a local folder of scans and a local folder of annotated photos
        "mix": {"docvqa": 4, "iam-forms": 3, "kaggle-dirty-documents": 4, "funsd": 5, "scans": 2, "photos": "all"},
        "max_size": 64,
        "out": "prepared",
        "options": {"docvqa": {"splits": ["val", "test"]}, "iam-forms": {"sets": ["E-H"]},
                    "scans": {"source": "folder", "root": "local/scans"},
                    "photos": {"source": "folder", "root": "local/photos"}},
        "masks": {"photos": "polygon"},
    },
}


@pytest.fixture
def fixtures(tmp_path):
    """The datasets, imported as a user would, plus two local folders and a docsynth.yaml."""
    cfg = config_mod.typed(CONFIG)
    dl = tmp_path / "downloads"
    images, qas = docvqa_archives(dl)
    for name, archive in [("docvqa", images), ("docvqa", qas), *[("iam-forms", a) for a in iam_archives(dl)],
                          ("kaggle-dirty-documents", kaggle_archive(dl)), ("funsd", funsd_zip(dl, corrupt=True))]:
        import_data(cfg, name, archive)
    for i in range(3):
        p = Path("local/scans") / f"scan{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(page_png(90, 120, seed=i))
    for i in range(2):
        p = Path("local/photos") / f"photo{i}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(smartdoc_photo(0))
        p.with_suffix(".json").write_text(json.dumps({"corners": PHOTO_QUAD}))
    Path("docsynth.yaml").write_text(yaml.safe_dump(CONFIG))
    return cfg


def _cfg(**sources):
    cfg = config_mod.load("docsynth.yaml")
    return cfg.model_copy(update={"sources": cfg.sources.model_copy(update=sources)})


@pytest.mark.slow
def test_reference_mix_counts_crop_resize_and_masks(fixtures, cli):
    result = cli("sources", "prepare", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    taken = {e: s["taken"] for e, s in summary["sources"].items()}
    assert taken == {"docvqa": 4, "iam-forms": 3, "kaggle-dirty-documents": 4, "funsd": 3, "scans": 2, "photos": 2}
    # FUNSD: 4 images listed (one corrupt), 5 asked -> warning, all taken, the corrupt one skipped and counted
    assert summary["sources"]["funsd"]["available"] == 4 and summary["sources"]["funsd"]["skipped"] == 1
    assert "funsd: asked for 5 documents but only 4 are available" in result.stderr
    assert "funsd: skipped 1 unreadable" in result.stderr
    out = Path("prepared")
    rows = read_jsonl(out / "documents.jsonl")
    assert len(rows) == summary["documents"] == 18
    for row in rows:
        image = cv2.imread(str(out / row["image"]))
        mask = cv2.imread(str(out / row["mask"]), cv2.IMREAD_GRAYSCALE)
        assert not Path(row["image"]).is_absolute() and image.shape[:2] == (row["height"], row["width"])
        assert max(row["width"], row["height"]) == 64 and mask.shape == image.shape[:2]
        assert set(np.unique(mask)) <= {0, 255}
        assert row["licence"] and row["original"] and len(row["corners"]) == 4
        if row["source"] != "photos":
            assert (mask == 255).all() and row["mask_strategy"] == "fullpage"
    docvqa = [r for r in rows if r["source"] == "docvqa"]
    assert {r["meta"]["split"] for r in docvqa} <= {"val", "test"}
    # 200x260 scans lose 42 px per border (116x176) before the resize: 42x64, not 49x64
    assert {(r["width"], r["height"]) for r in docvqa} == {(42, 64)}
    assert all(r["source_id"][0] in "efgh" for r in rows if r["source"] == "iam-forms")
    photo = next(r for r in rows if r["source"] == "photos")
    scale = 64 / 400
    assert np.allclose(photo["corners"], np.array(PHOTO_QUAD)[[0, 1, 2, 3]] * scale, atol=1e-3)
    mask = cv2.imread(str(out / photo["mask"]), cv2.IMREAD_GRAYSCALE)
    truth = quad_mask(np.array(photo["corners"]), mask.shape)
    assert ((mask > 0) == (truth > 0)).mean() > 0.97

    # the prepared folder is exactly what generate --documents reads
    gen = cli("generate", "--documents", str(out), "--count", "6", "--per-document", "1", "--out", "synth", "--json")
    assert gen.exit_code == 0, gen.stderr
    manifest = read_jsonl("synth/manifest.jsonl")
    assert len(manifest) == 6
    assert [m["document"]["id"] for m in manifest] == [r["id"] for r in rows[:6]]


def test_prepare_is_deterministic_and_worker_independent(fixtures):
    mix = {"docvqa": 3, "kaggle-dirty-documents": 3, "photos": 1}
    a = prepare(_cfg(mix=mix, out="a"))
    b = prepare(_cfg(mix=mix, out="b", workers=2))
    rows_a, rows_b = read_jsonl("a/documents.jsonl"), read_jsonl("b/documents.jsonl")
    assert rows_a == rows_b and a["documents"] == b["documents"] == 7
    for row in rows_a:
        assert Path("a", row["image"]).read_bytes() == Path("b", row["image"]).read_bytes()
        assert Path("a", row["mask"]).read_bytes() == Path("b", row["mask"]).read_bytes()
    cfg = _cfg(mix=mix, out="c")
    cfg.seed = 7
    prepare(cfg)
    assert [r["id"] for r in read_jsonl("c/documents.jsonl")] != [r["id"] for r in rows_a]
    # an entry's sample does not depend on the other entries of the mix
    prepare(_cfg(mix={"kaggle-dirty-documents": 3}, out="d"))
    assert [r["id"] for r in read_jsonl("d/documents.jsonl")] == \
        [r["id"] for r in rows_a if r["source"] == "kaggle-dirty-documents"]


def test_prepare_resumes_and_never_overwrites_without_force(fixtures):
    mix = {"docvqa": 4, "scans": 3}
    first = prepare(_cfg(mix=mix, out="p"))
    reference = read_jsonl("p/documents.jsonl")
    # interrupt: a page's files and the end of the journal are gone, no documents.jsonl yet
    journal = Path("p/.prepare-journal.jsonl")
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    Path("p/documents.jsonl").unlink()
    Path("p", reference[-1]["image"]).unlink()
    again = prepare(_cfg(mix=mix, out="p"))
    assert read_jsonl("p/documents.jsonl") == reference
    assert again["resumed"] == 3 and again["written"] == first["written"] - 3
    done = prepare(_cfg(mix=mix, out="p"))
    assert done["written"] == 0 and done["resumed"] == 7
    # the folder gains files: the journal no longer matches the listing, so pages are redone
    for i in range(3, 9):
        Path("local/scans", f"scan{i}.png").write_bytes(page_png(90, 120, seed=i))
    prepare(_cfg(mix=mix, out="p"))
    prepare(_cfg(mix=mix, out="fresh"))
    assert read_jsonl("p/documents.jsonl") == read_jsonl("fresh/documents.jsonl")
    assert read_jsonl("p/documents.jsonl") != reference
    with pytest.raises(DocsynthError, match="--force"):
        prepare(_cfg(mix={"docvqa": 2}, out="p"))
    Path("p/notes.txt").write_text("mine")
    prepare(_cfg(mix={"docvqa": 2}, out="p"), force=True)
    assert len(read_jsonl("p/documents.jsonl")) == 2 and Path("p/notes.txt").read_text() == "mine"
    assert len(list(Path("p/images").rglob("*.jpg"))) == 2


def test_mix_parsing_and_bad_values(fixtures, cli):
    assert parse_mix("docvqa=700, iam-forms=100,funsd=all") == {"docvqa": 700, "iam-forms": 100, "funsd": "all"}
    for bad in ("docvqa", "docvqa=lots", ""):
        with pytest.raises(DocsynthError, match="--mix"):
            parse_mix(bad)
    with pytest.raises(DocsynthError, match="sources.mix.docvqa"):
        prepare(_cfg(mix={"docvqa": -1}))
    result = cli("sources", "prepare", "--mix", "funsd=all", "--max-size", "32", "--out", "o", "--json")
    summary = json.loads(result.stdout)
    assert summary["documents"] == 3 and "asked for" not in result.stderr
    assert all(max(r["width"], r["height"]) == 32 for r in read_jsonl("o/documents.jsonl"))
    polygon_without_outline = cli("sources", "prepare", "--mix", "scans=1", "--out", "q", "-c", "docsynth.yaml")
    assert polygon_without_outline.exit_code == 0
    Path("bad.yaml").write_text(yaml.safe_dump({**CONFIG, "sources": {**CONFIG["sources"], "masks": {"scans": "polygon"}}}))
    result = cli("sources", "prepare", "--mix", "scans=1", "--out", "r", "-c", "bad.yaml", "--json")
    summary = json.loads(result.stdout)  # every scan lacks an outline: skipped with the reason
    assert summary["documents"] == 0 and "no outline annotation" in summary["sources"]["scans"]["skipped_examples"][0]


# ---------------------------------------------------------------------------------------------
# mask strategies
# ---------------------------------------------------------------------------------------------


def test_threshold_finds_a_page_inside_a_scanner_border():
    from docsynth import plugins

    img = np.full((400, 300, 3), 25, np.uint8)  # dark scanner lid
    truth_quad = np.array([[40, 30], [265, 38], [258, 372], [35, 365]], float)
    truth = quad_mask(truth_quad, img.shape[:2])
    img[truth > 0] = 240
    cv2.putText(img, "TEXT on the page", (60, 200), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (10, 10, 10), 2)
    page = plugins.get("mask", "threshold").make_mask(Page(image=img))
    iou = ((page.mask > 0) & (truth > 0)).sum() / ((page.mask > 0) | (truth > 0)).sum()
    assert iou > 0.97
    assert np.abs(page.corners - truth_quad).max() < 4
    # a scan without a border: the whole image is the page
    plain = np.full((100, 80, 3), 240, np.uint8)
    plain[40:45, 10:70] = 0
    whole = plugins.get("mask", "threshold").make_mask(Page(image=plain))
    assert (whole.mask == 255).all()
    # a dark page on a light desk works too
    inv = 255 - img
    dark = plugins.get("mask", "threshold").make_mask(Page(image=inv))
    assert ((dark.mask > 0) & (truth > 0)).sum() / ((dark.mask > 0) | (truth > 0)).sum() > 0.97


def test_polygon_strategy_uses_corners_or_mask():
    from docsynth import plugins

    strategy = plugins.get("mask", "polygon")
    img = np.zeros((50, 60, 3), np.uint8)
    corners = np.array([[5, 5], [55, 8], [50, 45], [8, 40]], float)
    page = strategy.make_mask(Page(image=img, corners=corners))
    assert np.array_equal(page.mask, quad_mask(corners, (50, 60)))
    with pytest.raises(DocsynthError, match="no outline annotation"):
        strategy.make_mask(Page(image=img))
    with pytest.raises(DocsynthError, match="empty"):
        strategy.make_mask(Page(image=img, mask=np.zeros((50, 60), np.uint8)))


# ---------------------------------------------------------------------------------------------
# resize
# ---------------------------------------------------------------------------------------------


def test_resize_folder_keeps_aspect_and_binary_masks(fixtures, cli):
    prepare(_cfg(mix={"docvqa": 2, "photos": 1}, out="p"))
    result = cli("resize", "p", "small", "--max-size", "32", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["written"] == 6 and summary["documents_jsonl"]
    before, after = read_jsonl("p/documents.jsonl"), read_jsonl("small/documents.jsonl")
    for a, b in zip(before, after, strict=True):
        img = cv2.imread(str(Path("small", b["image"])))
        mask = cv2.imread(str(Path("small", b["mask"])), cv2.IMREAD_GRAYSCALE)
        assert img.shape[:2] == (b["height"], b["width"]) == mask.shape and max(img.shape[:2]) == 32
        assert abs(b["width"] / b["height"] - a["width"] / a["height"]) < 0.05
        assert set(np.unique(mask)) <= {0, 255}
        assert np.allclose(np.array(b["corners"]), np.array(a["corners"]) * (b["width"] / a["width"],
                                                                             b["height"] / a["height"]), atol=1e-3)
    marker = Path("small", after[0]["image"])
    marker.write_bytes(page_png(20, 20, suffix=marker.suffix))
    again = json.loads(cli("resize", "p", "small", "--max-size", "32", "--json").stdout)
    assert again["written"] == 0 and again["kept"] == 6 and cv2.imread(str(marker)).shape[:2] == (20, 20)
    forced = json.loads(cli("resize", "p", "small", "--max-size", "32", "--force", "--json").stdout)
    assert forced["written"] == 6 and cv2.imread(str(marker)).shape[:2] != (20, 20)
    bad = cli("resize", "p", "p/inner", "--max-size", "32")
    assert bad.exit_code == 2 and "must not be inside" in bad.stderr


def test_ids_that_clean_up_alike_get_distinct_files(tmp_path):
    for name in ("x y.png", "x_y.png", "x_y.jpg"):
        p = Path("alike") / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(page_png(40, 50, seed=len(name)))
    cfg = config_mod.typed({"sources": {
        "mix": {"folder": "all"}, "out": "o", "options": {"folder": {"root": "alike"}}}})
    assert prepare(cfg)["documents"] == 3
    rows = read_jsonl("o/documents.jsonl")
    assert len({r["image"] for r in rows}) == 3 and all(Path("o", r["image"]).is_file() for r in rows)
