"""The fault suite, part 3 (issue 27): bounded resources, honest exit statuses, outputs never read
back as inputs, resumes that resume, config and input checks, and what users read.

Like tests/test_faults.py, every case runs the real CLI in a subprocess and checks what a user
sees: the exit status (0 complete, 1 some work failed, 2 bad usage or config), one line on
stderr and no traceback.
"""

from __future__ import annotations

import json
import time

import yaml

from helpers import run_docsynth
from test_faults import fails, png

TINY = ("generate:\n  documents_count: 2\n  backgrounds_count: 2\n"
        "  source_options: {long_side: 160}\n  background_options: {size: [160, 120]}\n"
        "  compositor_options: {size: [64, 48]}\n")


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("docsynth: error:")]


# ---------------------------------------------------------------------------------------------
# 1. Resource requests are bounded before any work
# ---------------------------------------------------------------------------------------------


def test_worker_counts_are_capped_at_the_machine_with_one_note(tmp_path):
    made = run_docsynth("generate", "--workers", "10000", "--count", "2", "--out", "ds", "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    notes = [line for line in made.stderr.splitlines() if "generate.workers" in line]
    assert len(notes) == 1 and "10000" in notes[0] and "capped at" in notes[0], made.stderr
    assert json.loads(made.stdout)["samples"] == 2
    # train's DataLoader workers and torch threads are capped the same way, when the config loads
    (tmp_path / "big.yaml").write_text("train: {workers: 10000, threads: 5000}\nsources: {workers: 9999}\n")
    shown = run_docsynth("config", "show", "--config", "big.yaml", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    cfg = json.loads(shown.stdout)
    assert cfg["train"]["workers"] < 10000 and cfg["train"]["threads"] < 5000 and cfg["sources"]["workers"] < 9999
    assert sum("capped at" in line for line in shown.stderr.splitlines()) == 3


def test_sizes_and_counts_have_hard_caps_checked_before_work(tmp_path, ):
    (tmp_path / "huge.yaml").write_text("generate:\n  compositor_options: {size: [20000, 20000]}\n")
    started = time.monotonic()
    fails(run_docsynth("generate", "--config", "huge.yaml", "--count", "2", "--out", "ds", cwd=tmp_path),
          "huge.yaml:2", "generate.compositor_options.size", "8192")
    assert time.monotonic() - started < 30 and not (tmp_path / "ds").exists()
    fails(run_docsynth("generate", "--count", "100000000", "--out", "ds", cwd=tmp_path), "generate.count", "10000000")
    (tmp_path / "train.yaml").write_text("train: {input_size: 100000, batch_size: 1000000}\n")
    result = run_docsynth("config", "show", "--config", "train.yaml", cwd=tmp_path)
    assert result.returncode == 2 and len(errors(result)) == 2, result.stderr
    # preview: a 20000 px tile would be gigabytes
    png(tmp_path / "photos" / "a.jpg", 80, 60)
    (tmp_path / "photos" / "corners.csv").write_text("image,tl_x,tl_y,tr_x,tr_y,br_x,br_y,bl_x,bl_y\n"
                                                     "a.jpg,10,10,70,10,70,50,10,50\n")
    fails(run_docsynth("preview", "photos", "--out", "sheet.png", "--tile", "20000", cwd=tmp_path), "--tile", "2048")
    assert not (tmp_path / "sheet.png").exists()


# ---------------------------------------------------------------------------------------------
# 2. Incomplete results say so: exit 1, a record that says incomplete, a rerun that retries
# ---------------------------------------------------------------------------------------------


def test_generate_failed_samples_are_recorded_and_retried(tmp_path):
    docs = tmp_path / "docs"
    png(docs / "a.png", 120, 160)
    good = (docs / "a.png").read_bytes()
    (docs / "b.png").write_bytes(good[: len(good) // 2])  # a cut-off download
    png(tmp_path / "bgs" / "wood.png", 200, 150, value=120)
    (tmp_path / "docsynth.yaml").write_text("generate: {shard_size: 2}\n")  # a shard per document
    args = ("generate", "--documents", "docs", "--backgrounds", "bgs", "-k", "2", "--out", "ds", "--json")
    first = run_docsynth(*args, cwd=tmp_path)
    fails(first, "incomplete", "2 of 4 samples failed", "b.png", "rerun", code=1)
    summary = json.loads(first.stdout)
    assert summary["complete"] is False and summary["samples"] == 2 and summary["failed"] == 2
    record = yaml.safe_load((tmp_path / "ds" / "run.yaml").read_text())
    assert record["status"] == {"complete": False, "samples": 2, "failed": 2}
    failed = [json.loads(line) for line in (tmp_path / "ds" / "failed.jsonl").read_text().splitlines()]
    assert [f["index"] for f in failed] == [2, 3] and all("b.png" in f["document"] for f in failed)
    # the same rerun tries them again (and fails again: still incomplete, still exit 1)
    fails(run_docsynth(*args, cwd=tmp_path), "2 of 4 samples failed", code=1)
    # once the page is fixed, a rerun makes exactly the missing samples
    png(docs / "b.png", 120, 160, value=90)
    fixed = run_docsynth(*args, cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    summary = json.loads(fixed.stdout)
    assert summary["complete"] is True and summary["samples"] == 4
    assert summary["written"] == 2 and summary["resumed"] == 2  # a's shard was done: not made again
    assert yaml.safe_load((tmp_path / "ds" / "run.yaml").read_text())["status"]["complete"] is True
    assert not (tmp_path / "ds" / "failed.jsonl").exists()
    assert len((tmp_path / "ds" / "manifest.jsonl").read_text().splitlines()) == 4


def test_prepare_import_textures_and_scan_that_make_nothing_do_not_exit_0(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("a.png", "b.jpg"):
        (bad / name).write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    (tmp_path / "docsynth.yaml").write_text("sources:\n  mix: {mine: 2}\n  options: {mine: {source: folder, root: bad}}\n"
                                            "  out: docs\n")
    fails(run_docsynth("sources", "prepare", cwd=tmp_path), "docs", "incomplete", "'mine' gave 0 of 2", code=1)
    (tmp_path / "empty").mkdir()
    fails(run_docsynth("backgrounds", "import-textures", "empty", "--out", "bgs", cwd=tmp_path),
          "empty", "no files to import")
    fails(run_docsynth("backgrounds", "import-textures", "bad", "--out", "bgs", cwd=tmp_path),
          "2 files could not be decoded", code=1)
    scan = run_docsynth("scan", "bad", "--out", "pages", "--json", cwd=tmp_path)
    fails(scan, "2 of 2 photos could not be read", code=1)
    assert json.loads(scan.stdout)["pages"] == 0


# ---------------------------------------------------------------------------------------------
# 5. Config checks: every problem at once, finite floats, one line for odd files
# ---------------------------------------------------------------------------------------------


def test_config_reports_core_and_plugin_problems_at_once(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  epochs: 0\n  bogus: 1\n  batch_size: lots\n"
                                     "generate:\n  compositor_options: {landscape_p: 3, nope: 1}\n")
    result = run_docsynth("config", "show", "--config", "c.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = errors(result)
    assert len(lines) == 5, lines
    for needle in ("c.yaml:2: 'train.epochs'", "c.yaml:3: unknown key 'train.bogus'", "c.yaml:4: 'train.batch_size'",
                   "'generate.compositor_options.landscape_p'", "'generate.compositor_options.nope'"):
        assert sum(needle in line for line in lines) == 1, (needle, lines)


def test_nan_and_infinity_are_refused(tmp_path):
    (tmp_path / "c.yaml").write_text("seed: 1\ntrain:\n  lr: .nan\n  weight_decay: .inf\n"
                                     "generate:\n  compositor_options: {bg_zoom: [1.0, .inf]}\n")
    result = run_docsynth("config", "show", "--config", "c.yaml", "--json", cwd=tmp_path)
    assert result.returncode == 2 and not result.stdout, result.stdout
    lines = errors(result)
    assert any("c.yaml:3: 'train.lr' is nan" in line and "finite" in line for line in lines), lines
    assert any("c.yaml:4: 'train.weight_decay' is inf" in line for line in lines), lines
    assert any("bg_zoom" in line for line in lines), lines


def test_odd_config_files_are_one_line(tmp_path):
    (tmp_path / "latin1.yaml").write_bytes("seed: 1\n# caf\xe9\n".encode("latin-1"))
    fails(run_docsynth("config", "show", "--config", "latin1.yaml", cwd=tmp_path), "latin1.yaml:2", "UTF-8")
    (tmp_path / "merge.yaml").write_text("base: &b\n  epochs: 1\ntrain:\n  <<: *b\n")
    fails(run_docsynth("config", "show", "--config", "merge.yaml", cwd=tmp_path), "merge.yaml:4", "merge keys")
