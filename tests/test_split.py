"""docsynth split: leak-free grouping, reference mode, resizing, --check, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from train_data import make_dataset

from docsynth.dataset import split as split_mod
from docsynth.io import read_jsonl, read_mask


def _groups(out: Path, split: str) -> tuple[set, set]:
    rows = read_jsonl(out / split / "manifest.jsonl")
    return ({split_mod.document_key(r) for r in rows}, {split_mod.background_key(r) for r in rows})


def test_leak_free_default_keeps_documents_together_and_check_passes(cli, tmp_path):
    make_dataset(tmp_path / "ds", documents=6, per_document=3)
    res = cli("split", "ds", "--out", "sp", "--valid-fraction", "0.34", "--max-size", "0", "--json")
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["train"] + summary["valid"] == 18 and summary["valid"] == 6  # 2 of 6 documents
    train_docs, _ = _groups(tmp_path / "sp", "train")
    valid_docs, _ = _groups(tmp_path / "sp", "valid")
    assert train_docs and valid_docs and not train_docs & valid_docs
    check = cli("split", "sp", "--check", "--json")
    assert check.exit_code == 0 and json.loads(check.stdout)["leaks"] == 0
    # every manifest row points at files that exist and keeps the generate fields
    row = read_jsonl(tmp_path / "sp" / "valid" / "manifest.jsonl")[0]
    assert (tmp_path / "sp" / "valid" / row["image"]).is_file() and row["preset"] == "tiny"
    assert len(read_jsonl(tmp_path / "sp" / "split.jsonl")) == 18


def test_reference_mode_leaks_and_check_catches_it(cli, tmp_path):
    make_dataset(tmp_path / "ds", documents=4, per_document=3)
    res = cli("split", "ds", "--out", "ref", "--valid-per-group", "1", "--max-size", "0", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["valid"] == 4  # one composite of every document
    check = cli("split", "ref", "--check")
    assert check.exit_code == 1
    assert "LEAKS: 4 documents" in check.stdout


def test_check_catches_a_planted_leak(cli, tmp_path):
    make_dataset(tmp_path / "ds", documents=5, per_document=2)
    assert cli("split", "ds", "--out", "sp", "--max-size", "0").exit_code == 0
    valid = tmp_path / "sp" / "valid" / "manifest.jsonl"
    rows = read_jsonl(valid)
    train_doc = read_jsonl(tmp_path / "sp" / "train" / "manifest.jsonl")[0]["document"]
    rows[0]["document"] = train_doc  # plant: a train page also in valid
    valid.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = cli("split", "sp", "--check", "--json")
    assert res.exit_code == 1
    assert json.loads(res.stdout)["leaked_documents"] == [f"tiny/{train_doc['id']}"]


def test_group_by_both_drops_crossing_samples(tmp_path):
    rows = make_dataset(tmp_path / "ds", documents=8, per_document=3, backgrounds=4)
    labels = split_mod.assign(rows, seed=3, valid_fraction=0.5, group_by="both")
    keep = [(r, side) for r, side in zip(rows, labels, strict=True) if side != "dropped"]
    for key in (split_mod.document_key, split_mod.background_key):
        train = {key(r) for r, side in keep if side == "train"}
        valid = {key(r) for r, side in keep if side == "valid"}
        assert not train & valid
    assert "dropped" in labels  # with 8 documents x 4 backgrounds some samples must cross


def test_resize_rescales_corners_and_is_deterministic(cli, tmp_path):
    make_dataset(tmp_path / "ds", documents=3, per_document=2, size=(80, 64))
    assert cli("split", "ds", "--out", "a", "--max-size", "40", "--seed", "5").exit_code == 0
    assert cli("split", "ds", "--out", "b", "--max-size", "40", "--seed", "5").exit_code == 0
    src = {r["id"]: r for r in read_jsonl(tmp_path / "ds" / "manifest.jsonl")}
    for split in ("train", "valid"):
        ra, rb = (read_jsonl(tmp_path / d / split / "manifest.jsonl") for d in ("a", "b"))
        assert ra == rb
        for row in ra:
            assert (row["width"], row["height"]) == (40, 32)
            assert np.allclose(row["corners"], np.asarray(src[row["id"]]["corners"]) / 2, atol=1e-3)
            mask = read_mask(tmp_path / "a" / split / row["mask"])
            assert mask.shape == (32, 40)
            assert (tmp_path / "a" / split / row["image"]).read_bytes() == \
                   (tmp_path / "b" / split / row["image"]).read_bytes()
    # another seed picks other documents
    other = [split_mod.assign(read_jsonl(tmp_path / "ds" / "manifest.jsonl"), seed=s, valid_fraction=0.34)
             for s in range(6)]
    assert len({tuple(o) for o in other}) > 1


def test_existing_output_needs_force_and_rerun_is_a_no_op(cli, tmp_path):
    make_dataset(tmp_path / "ds", documents=3, per_document=2)
    assert cli("split", "ds", "--out", "sp").exit_code == 0
    again = cli("split", "ds", "--out", "sp", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["resumed"] is True
    other = cli("split", "ds", "--out", "sp", "--seed", "9")
    assert other.exit_code != 0 and "--force" in other.stderr
    assert cli("split", "ds", "--out", "sp", "--seed", "9", "--force").exit_code == 0


def test_bad_inputs_are_one_line_errors(cli, tmp_path):
    res = cli("split", "missing", "--out", "sp")
    assert res.exit_code != 0 and "missing: dataset folder not found" in res.stderr
    make_dataset(tmp_path / "ds", documents=2, per_document=2)
    res = cli("split", "ds", "--out", "sp", "--valid-fraction", "0.2", "--valid-per-group", "1")
    assert res.exit_code != 0 and "exclude each other" in res.stderr
    res = cli("split", "ds", "--check")
    assert res.exit_code != 0 and "no train/ folder" in res.stderr
