"""Dataset source plugins on tiny archives with the datasets' real layouts and file names:
import, fetch from a local HTTP server, listing, cleaning, errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sources_fixtures import (
    DOCVQA,
    docvqa_archives,
    funsd_zip,
    iam_archives,
    kaggle_archive,
    make_zip,
    smartdoc_zip,
)

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError

ROOT = Path("data/sources")  # the default sources.root, relative to the test's folder
ALL = {"docvqa", "iam-forms", "kaggle-dirty-documents", "funsd", "smartdoc-qa", "folder", "pdf", "procedural"}


def _json(result):
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def _list(name, **options):
    source = plugins.get("source", name)
    return source, source.list_documents(options_mod.build(source, {"root": str(ROOT / name), "seed": 1, **options}))


def test_list_shows_every_source_with_licence_and_how_to_get_it(cli):
    infos = {i["name"]: i for i in _json(cli("sources", "list", "--json"))}
    assert set(infos) >= ALL
    for name in ALL:
        assert infos[name]["licence"], name
    assert infos["funsd"]["fetch"] == "download" and infos["smartdoc-qa"]["fetch"] == "download"
    for gated in ("docvqa", "iam-forms", "kaggle-dirty-documents"):
        assert infos[gated]["fetch"] == "manual"
        assert not infos[gated]["present"]
    assert infos["procedural"]["present"] and infos["procedural"]["documents"] == 24
    assert infos["procedural"]["note"].startswith("ready") and "not here" not in infos["procedural"]["note"]
    assert infos["funsd"]["note"] == "not here; docsynth sources fetch funsd" and not infos["funsd"]["present"]
    assert "spdocvqa_images.tar.gz" in infos["docvqa"]["expected_archives"]
    assert infos["smartdoc-qa"]["mask"] == "threshold" and infos["docvqa"]["mask"] == "fullpage"


def test_unknown_source_names_list_the_known_ones(cli, tmp_path):
    for args in (("sources", "fetch", "nope"), ("sources", "import", "nope", str(tmp_path)),
                 ("sources", "prepare", "--mix", "docvqa=3,nope=2")):
        result = cli(*args)
        assert result.exit_code == 2
        assert "unknown source 'nope'" in result.stderr and "docvqa, folder, funsd" in result.stderr
        assert "Traceback" not in result.stderr


def test_manual_download_sources_say_what_to_do(cli):
    result = cli("sources", "fetch", "docvqa")
    assert result.exit_code == 3
    assert "spdocvqa_images.tar.gz" in result.stdout and "docsynth sources import docvqa" in result.stdout
    result = cli("sources", "fetch", "iam-forms", "--json")
    assert result.exit_code == 3
    info = json.loads(result.stdout)
    assert "formsE-H.tgz" in info["instructions"] and info["root"].endswith("iam-forms")
    result = cli("sources", "fetch", "folder")
    assert result.exit_code == 2 and "nothing to download" in result.stderr


def test_docvqa_import_splits_and_border_crop(cli, tmp_path):
    images, qas = docvqa_archives(tmp_path / "dl")
    out = _json(cli("sources", "import", "docvqa", str(images), "--json"))
    assert out["documents"] == 7
    with pytest.raises(DocsynthError, match="spdocvqa_qas.zip"):
        _list("docvqa", splits="val,test")  # no question files yet: splits unknown
    _json(cli("sources", "import", "docvqa", str(qas), "--json"))
    source, refs = _list("docvqa", splits="val,test")
    assert sorted(r.id for r in refs) == sorted(DOCVQA["val"] + DOCVQA["test"])
    assert {r.meta["split"] for r in refs} == {"val", "test"}
    page = source.load_document(refs[0])
    assert page.image.shape == (260 - 84, 200 - 84, 3)  # 42 px off every border
    _, all_refs = _list("docvqa", crop=0)
    assert len(all_refs) == 7
    assert source.load_document(all_refs[0]).image.shape == (260, 200, 3)
    with pytest.raises(DocsynthError, match="unknown nope"):
        _list("docvqa", splits=["nope"])


def test_iam_forms_sets_and_non_form_files(cli, tmp_path):
    for archive in iam_archives(tmp_path / "dl"):
        _json(cli("sources", "import", "iam-forms", str(archive), "--json"))
    _, refs = _list("iam-forms")
    assert len(refs) == 6 and "README" not in {r.id for r in refs}
    _, refs = _list("iam-forms", sets=["E-H"])
    assert sorted(r.id for r in refs) == ["e01-014", "f04-024", "g06-011a", "h02-037"]
    assert (ROOT / "iam-forms" / "formsE-H" / "e01-014.png").is_file()


def test_kaggle_zip_of_zips_is_unpacked(cli, tmp_path):
    out = _json(cli("sources", "import", "kaggle-dirty-documents", str(kaggle_archive(tmp_path)), "--json"))
    assert out["documents"] == 5 and "train.zip" in out["unpacked"]
    source, refs = _list("kaggle-dirty-documents")
    assert sorted(r.id for r in refs) == ["test/1", "train/101", "train/102", "train_cleaned/101", "train_cleaned/102"]
    _, refs = _list("kaggle-dirty-documents", splits="test")
    assert [r.id for r in refs] == ["test/1"]
    assert source.load_document(refs[0]).image.shape == (258, 540, 3)
    assert not list((ROOT / "kaggle-dirty-documents").rglob("*.zip"))  # our unpacked copies only


def test_import_twice_needs_force_and_wrong_names_warn(cli, tmp_path):
    archive = funsd_zip(tmp_path)
    _json(cli("sources", "import", "funsd", str(archive), "--json"))
    again = cli("sources", "import", "funsd", str(archive))
    assert again.exit_code == 2 and "--force" in again.stderr
    assert _json(cli("sources", "import", "funsd", str(archive), "--force", "--json"))["documents"] == 3
    renamed = tmp_path / "funsd-copy.zip"
    renamed.write_bytes(archive.read_bytes())
    result = cli("sources", "import", "funsd", str(renamed))
    assert result.exit_code == 0 and "not one of the archives" in result.stderr


def test_import_refuses_path_traversal(cli, tmp_path):
    evil = make_zip(tmp_path / "dataset.zip", {"dataset/training_data/images/1.png": b"x",
                                               "../../escaped.txt": b"evil"})
    result = cli("sources", "import", "funsd", str(evil))
    assert result.exit_code == 2 and "path traversal" in result.stderr
    assert not list(Path.cwd().rglob("escaped.txt")) and not (tmp_path.parent / "escaped.txt").exists()
    assert not (ROOT / "funsd" / "dataset").exists()


def test_import_a_folder_copies_it(cli, tmp_path):
    src = tmp_path / "kaggle" / "train"
    src.mkdir(parents=True)
    from sources_fixtures import page_png
    (src / "7.png").write_bytes(page_png())
    out = _json(cli("sources", "import", "kaggle-dirty-documents", str(src), "--json"))
    assert out["documents"] == 1 and (ROOT / "kaggle-dirty-documents" / "train" / "7.png").is_file()


def test_funsd_fetch_from_local_server_skips_junk(cli, tmp_path, monkeypatch, http_server):
    data = funsd_zip(tmp_path).read_bytes()
    source = plugins.get("source", "funsd")
    # the real pins: the official URL and the sha256 doctr uses
    assert source.downloads[0].url == "https://guillaumejaume.github.io/FUNSD/dataset.zip"
    assert source.downloads[0].sha256.startswith("c31735649e4f")
    from docsynth.sources.download import Download

    srv = http_server.serve({"/FUNSD/dataset.zip": data})
    monkeypatch.setattr(type(source), "downloads",
                        [Download(srv.url("/FUNSD/dataset.zip"), "dataset.zip", hashlib.sha256(data).hexdigest())])
    out = _json(cli("sources", "fetch", "funsd", "--json"))
    assert out["documents"] == 3 and out["unpacked"] == ["dataset.zip"]
    again = _json(cli("sources", "fetch", "funsd", "--json"))  # verified file, already unpacked
    assert again["unpacked"] == [] and len(srv.requests) == 1
    listed = {i["name"]: i for i in _json(cli("sources", "list", "--json"))}
    assert listed["funsd"]["present"] and listed["funsd"]["documents"] == 3
    _, refs = _list("funsd")
    assert sorted(r.id for r in refs) == ["test/82250337_0338", "train/82092117", "train/82200067_0069"]
    assert all("__MACOSX" not in r.path for r in refs)
    assert refs[0].meta["annotation"].endswith(".json")
    _, refs = _list("funsd", splits=["test"])
    assert len(refs) == 1


def test_fetch_rejects_a_wrong_checksum(cli, tmp_path, monkeypatch, http_server):
    source = plugins.get("source", "funsd")
    from docsynth.sources.download import Download

    srv = http_server.serve({"/dataset.zip": funsd_zip(tmp_path).read_bytes()})
    monkeypatch.setattr(type(source), "downloads", [Download(srv.url("/dataset.zip"), "dataset.zip", "ab" * 32)])
    result = cli("sources", "fetch", "funsd")
    assert result.exit_code == 2 and "sha256 mismatch" in result.stderr and "deleted" in result.stderr
    assert list((ROOT / "funsd" / "downloads").iterdir()) == []


def test_smartdoc_fetch_resumes_after_an_interruption(cli, tmp_path, monkeypatch, http_server):
    data = smartdoc_zip(tmp_path).read_bytes()
    source = plugins.get("source", "smartdoc-qa")
    assert source.downloads[0].size == 13_659_581_479 and source.downloads[0].md5
    from docsynth.sources.download import Download

    srv = http_server.serve({"/records/5293201/files/Dataset%20SmartDoc-QA.zip": data})
    url = srv.url("/records/5293201/files/Dataset%20SmartDoc-QA.zip") + "?download=1"
    monkeypatch.setattr(type(source), "downloads", [Download(url, "Dataset SmartDoc-QA.zip", size=len(data),
                                                             md5=hashlib.md5(data).hexdigest())])
    srv.cut_after["/records/5293201/files/Dataset%20SmartDoc-QA.zip"] = len(data) // 3
    failed = cli("sources", "fetch", "smartdoc-qa", "--retries", "0")
    assert failed.exit_code == 2 and "rerun to resume" in failed.stderr
    out = _json(cli("sources", "fetch", "smartdoc-qa", "--json"))
    assert srv.requests[-1][1] == f"bytes={len(data) // 3}-"
    assert out["documents"] == 2
    source, refs = _list("smartdoc-qa")
    assert {r.meta["document"] for r in refs} == {"D1", "D27"}
    page = plugins.get("mask", "threshold").make_mask(source.load_document(refs[0]))
    assert 0.25 < (page.mask > 0).mean() < 0.5  # the page, not the desk


# ---------------------------------------------------------------------------------------------
# folder source with annotations
# ---------------------------------------------------------------------------------------------


def _img(path: Path, w=100, h=80):
    from sources_fixtures import page_png

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(page_png(w, h))


def test_plain_folder_behaves_as_before(tmp_path):
    _img(tmp_path / "a.png")
    _img(tmp_path / "sub" / "b.jpg")
    source = plugins.get("source", "folder")
    refs = source.list_documents(options_mod.build(source, {"root": str(tmp_path)}))
    assert [r.id for r in refs] == ["a", "sub/b"]
    page = source.load_document(refs[0])
    assert page.mask is None and page.corners is None


def test_folder_annotations_json_mask_and_layout(tmp_path):
    import cv2
    import numpy as np

    root = tmp_path / "photos"
    _img(root / "quad.jpg")
    (root / "quad.json").write_text(json.dumps({"corners": [[90, 70], [10, 70], [10, 10], [90, 10]]}))
    _img(root / "poly.png")
    (root / "poly.json").write_text(json.dumps({"shapes": [{"points": [[0, 0], [50, 0], [100, 40], [50, 80],
                                                                      [0, 80]]}]}))
    _img(root / "masked.png")
    m = np.zeros((80, 100), np.uint8)
    m[20:60, 30:70] = 255
    cv2.imwrite(str(root / "masked_mask.png"), m)
    source = plugins.get("source", "folder")
    refs = {r.id: r for r in source.list_documents(options_mod.build(source, {"root": str(root)}))}
    assert sorted(refs) == ["masked", "poly", "quad"]  # the mask file is not a document
    quad = source.load_document(refs["quad"])
    assert np.allclose(quad.corners, [[10, 10], [90, 10], [90, 70], [10, 70]])  # reordered TL,TR,BR,BL
    assert (quad.mask > 0).sum() == 80 * 60  # area-exact rasterisation
    poly = source.load_document(refs["poly"])
    assert poly.corners is None and 0.6 < (poly.mask > 0).mean() < 0.9
    masked = source.load_document(refs["masked"])
    assert (masked.mask > 0).sum() == 40 * 40
    strategy = plugins.get("mask", "polygon")
    fitted = strategy.make_mask(masked)
    assert np.allclose(fitted.corners, [[30, 20], [70, 20], [70, 60], [30, 60]], atol=0.01)
    # the images/ + masks/ layout (also what prepare writes)
    lay = tmp_path / "layout"
    _img(lay / "images" / "x" / "p1.jpg")
    (lay / "masks" / "x").mkdir(parents=True)
    cv2.imwrite(str(lay / "masks" / "x" / "p1.png"), m)
    refs = source.list_documents(options_mod.build(source, {"root": str(lay)}))
    assert [r.id for r in refs] == ["x/p1"]
    assert (source.load_document(refs[0]).mask > 0).sum() == 40 * 40
    (root / "bad.json").write_text('{"corners": [[1, 2]]}')
    _img(root / "bad.png")
    bad = [r for r in source.list_documents(options_mod.build(source, {"root": str(root)})) if r.id == "bad"][0]
    with pytest.raises(DocsynthError, match="bad.json: no page outline"):
        source.load_document(bad)
