"""generate: offline default, label consistency, determinism across workers, resume, safety."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from docsynth.geometry import mask_iou, quad_mask


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _digest(out: Path) -> dict[str, str]:
    files = sorted(p for sub in ("images", "masks") for p in (out / sub).iterdir())
    files.append(out / "manifest.jsonl")
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


SMALL = ["--per-document", "2", "--count", "10"]


def _small_config(tmp_path: Path, extra: str = "") -> None:
    (tmp_path / "docsynth.yaml").write_text(
        "generate:\n  documents_count: 4\n  backgrounds_count: 4\n  shard_size: 3\n"
        "  compositor: homography\n"
        "  source_options: {long_side: 400}\n  background_options: {size: [320, 240]}\n"
        "  compositor_options: {size: [160, 208]}\n" + extra)


@pytest.mark.slow
def test_default_generate_writes_consistent_dataset(cli, tmp_path):
    result = cli("generate", "--json")  # no options at all: built-in procedural default
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    out = Path(summary["out"])
    rows = _rows(out)
    assert summary["samples"] == len(rows) > 0
    assert (out / "run.yaml").is_file()
    for row in rows:
        image = cv2.imread(str(out / row["image"]))
        mask = cv2.imread(str(out / row["mask"]), cv2.IMREAD_UNCHANGED)
        assert mask.ndim == 2 and set(np.unique(mask)) <= {0, 255}
        assert image.shape[:2] == mask.shape == (row["height"], row["width"])
        assert set(row) >= {"id", "image", "mask", "document", "background", "seed", "corners", "flags"}
        if not set(row["flags"]) & {"truncated", "approximate", "occluded", "negative"}:
            iou = mask_iou(mask, quad_mask(np.array(row["corners"]), mask.shape))
            assert iou >= 0.99, (row["id"], iou)


def test_same_output_for_one_and_two_workers(cli, tmp_path):
    _small_config(tmp_path)
    one = cli("generate", "--out", "w1", "--workers", "1", *SMALL)
    two = cli("generate", "--out", "w2", "--workers", "2", *SMALL)
    assert one.exit_code == 0 and two.exit_code == 0, one.stderr + two.stderr
    assert _digest(tmp_path / "w1") == _digest(tmp_path / "w2")
    assert len(_rows(tmp_path / "w1")) == 10


def test_png_images_and_seed_change_output(cli, tmp_path):
    _small_config(tmp_path)
    cli("generate", "--out", "a", "--image-format", "png", *SMALL)
    cli("generate", "--out", "b", "--image-format", "png", "--seed", "3", *SMALL)
    assert (tmp_path / "a" / "images" / "0000000.png").is_file()
    assert _digest(tmp_path / "a") != _digest(tmp_path / "b")


def test_rerun_resumes_only_missing_shards(cli, tmp_path):
    _small_config(tmp_path)
    assert cli("generate", "--out", "ds", *SMALL).exit_code == 0
    out = tmp_path / "ds"
    before = _digest(out)
    keep = out / "images" / "0000000.jpg"
    stamp = keep.stat().st_mtime_ns
    # Simulate an interruption: shard 1 (samples 3-5) never finished.
    (out / "shards" / "00001.jsonl").unlink()
    for i in (3, 4, 5):
        (out / "images" / f"{i:07d}.jpg").unlink()
    result = cli("generate", "--out", "ds", "--json", *SMALL)
    summary = json.loads(result.stdout)
    assert summary["written"] == 3 and summary["resumed"] == 7
    assert _digest(out) == before
    assert keep.stat().st_mtime_ns == stamp  # finished shards untouched


@pytest.mark.slow
def test_other_config_refused_without_force(cli, tmp_path):
    _small_config(tmp_path)
    assert cli("generate", "--out", "ds", *SMALL).exit_code == 0
    refused = cli("generate", "--out", "ds", "--seed", "9", *SMALL)
    assert refused.exit_code == 2
    assert "not made with this config" in refused.stderr and "--force" in refused.stderr
    (tmp_path / "notes.txt").write_text("mine")
    user_dir = tmp_path / "mine"
    user_dir.mkdir()
    (user_dir / "keep.txt").write_text("precious")
    assert cli("generate", "--out", "mine", *SMALL).exit_code == 2
    assert (user_dir / "keep.txt").read_text() == "precious"
    forced = cli("generate", "--out", "ds", "--seed", "9", "--force", "--json", *SMALL)
    assert forced.exit_code == 0
    assert json.loads(forced.stdout)["written"] == 10


def test_folder_inputs_with_corrupt_files(cli, tmp_path):
    docs, bgs = tmp_path / "docs", tmp_path / "bgs"
    docs.mkdir()
    bgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        page = np.full((200, 150, 3), 240, np.uint8)
        page[20:30, 20:120] = 0
        cv2.imwrite(str(docs / f"page{i}.png"), page)
        cv2.imwrite(str(bgs / f"bg{i}.jpg"), rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    (docs / "broken.jpg").write_bytes(b"not an image")
    (bgs / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    result = cli("generate", "--documents", str(docs), "--backgrounds", str(bgs), "--per-document", "2",
                 "--out", "ds", "--compositor", "homography", "--json")
    assert result.exit_code == 1, result.stderr  # the dataset is incomplete: exit 1 says so
    summary = json.loads(result.stdout)
    assert summary["failed"] == 2 and summary["samples"] == 6  # broken.jpg's two samples skipped
    rows = _rows(tmp_path / "ds")
    assert {r["document"]["id"] for r in rows} == {"page0", "page1", "page2"}
    assert "broken" not in {r["background"] for r in rows}


def test_empty_or_missing_input_folder_is_a_clear_error(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    empty = cli("generate", "--documents", "empty")
    assert empty.exit_code == 2 and "no document images found" in empty.stderr
    missing = cli("generate", "--backgrounds", "nowhere")
    assert missing.exit_code == 2 and "nowhere: backgrounds folder not found" in missing.stderr
    unknown = cli("generate", "--compositor", "nope")
    assert unknown.exit_code == 2 and "unknown compositor 'nope'; known:" in unknown.stderr


def test_outputs_get_the_usual_file_mode(cli, tmp_path):
    _small_config(tmp_path)
    assert cli("generate", "--out", "ds", "--count", "2").exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "ds" / "manifest.jsonl").stat().st_mode & 0o777 == 0o666 & ~umask


def test_only_unreadable_documents_is_an_error(cli, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.jpg").write_bytes(b"junk")
    result = cli("generate", "--documents", "docs", "--out", "ds", "--compositor", "homography")
    assert result.exit_code == 1  # the work ran and all of it failed
    assert "no sample could be made" in result.stderr and "--documents" in result.stderr


def test_progress_counts_samples_and_what_a_resume_skips(tmp_path):
    """generate reports through the one Progress: start(total, already done), then one advance
    per finished shard of its size."""
    from docsynth import config
    from docsynth.generate.shards import generate
    from docsynth.progress import Progress

    class Recorder(Progress):
        def __init__(self):
            self.calls: list[tuple] = []

        def start(self, total, done=0):
            self.calls.append(("start", total, done))

        def advance(self, n=1):
            self.calls.append(("advance", n))

    cfg = config.load(None, {"seed": 1, "generate.documents_count": 2, "generate.backgrounds_count": 2,
                             "generate.count": 5, "generate.shard_size": 2, "generate.workers": 1,
                             "generate.source_options": {"long_side": 120},
                             "generate.background_options": {"size": [120, 90]},
                             "generate.compositor_options": {"size": [64, 48]}, "generate.out": "ds"})
    first = Recorder()
    assert generate(cfg, progress=first)["written"] == 5
    assert first.calls[0] == ("start", 5, 0)
    assert sorted(first.calls[1:]) == [("advance", 1), ("advance", 2), ("advance", 2)]
    (tmp_path / "ds" / "shards" / "00001.jsonl").unlink()  # samples 2 and 3 to redo
    again = Recorder()
    assert generate(cfg, progress=again)["written"] == 2
    assert again.calls == [("start", 5, 3), ("advance", 2)]


def test_each_generate_worker_runs_opencv_on_one_thread_and_the_caller_gets_its_threads_back(tmp_path, monkeypatch):
    """A worker is one core (OpenCV's own threads cost CPU on small frames and fight the other
    workers); with workers=1 the work runs in the caller's process, whose setting comes back."""
    from docsynth import config
    from docsynth.generate import shards

    seen = []
    real = shards.run_shard

    def spy(task):
        seen.append(cv2.getNumThreads())
        return real(task)

    monkeypatch.setattr(shards, "run_shard", spy)
    cfg = config.load(None, {"seed": 1, "generate.documents_count": 2, "generate.backgrounds_count": 2,
                             "generate.count": 4, "generate.shard_size": 2, "generate.workers": 1,
                             "generate.source_options": {"long_side": 120},
                             "generate.background_options": {"size": [120, 90]},
                             "generate.compositor_options": {"size": [64, 48]}, "generate.out": str(tmp_path / "ds")})
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        assert shards.generate(cfg)["written"] == 4
        assert seen == [1, 1] and cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)
