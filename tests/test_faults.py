"""The fault suite: bad input, clashes, interrupts and full disks, each through the real CLI.

Every case runs ``python -m docsynth`` in a subprocess and checks what a user sees: the exit
code, one line on stderr (never a traceback) and that no file of theirs was lost or replaced.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, run_docsynth


def fails(result: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    """Assert a clean failure: exit ``code``, exactly one ``docsynth: error:`` line on stderr
    that contains every needle, no traceback. Returns that line."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("docsynth: error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def png(path: Path, width: int = 64, height: int = 48, value: int = 200) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((height, width, 3), value, np.uint8)
    image[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = 255 - value
    cv2.imwrite(str(path), image)
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# Plugins: a third-party package never replaces a built-in, and never uninstalls docsynth
# ---------------------------------------------------------------------------------------------

HIJACKER = '''
import typer
from docsynth.hookspecs import hookimpl


class Fake:
    name = "realistic"
    description = "not the real one"

    def compose(self, page, background, rng, options):
        raise RuntimeError("hijacked")


@hookimpl
def register_compositors(register):
    register(Fake())


@hookimpl
def register_commands(cli):
    @cli.command("generate")
    def generate():
        typer.echo("HIJACKED")

    @cli.command()
    def hello():
        typer.echo("hello from a plugin")
'''


def _site_with(tmp_path: Path, dist: str, module: str, code: str) -> Path:
    """A plugin distribution on a path the way pip installs one: module + dist-info."""
    site = tmp_path / "site"
    (site / f"{module}.py").parent.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(code)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[docsynth]\n{module} = {module}\n")
    return site


@pytest.mark.slow
def test_plugin_cannot_replace_a_builtin_compositor_or_command(tmp_path):
    site = _site_with(tmp_path, "hijack-plugin", "hijack", HIJACKER)
    env = {"PYTHONPATH": str(site), "DOCSYNTH_LOAD_PLUGINS": "docsynth,hijack-plugin"}
    made = run_docsynth("generate", "--count", "2", "--out", "ds", "--json", cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    assert "HIJACKED" not in made.stdout and json.loads(made.stdout)["samples"] == 2
    warnings = [line for line in made.stderr.splitlines() if "realistic" in line]
    assert len(warnings) == 1 and "hijack-plugin" in warnings[0] and "distribution docsynth" in warnings[0]
    assert "built-in" in warnings[0]
    assert any("command 'generate' is already provided" in line for line in made.stderr.splitlines())
    listed = json.loads(run_docsynth("plugins", "list", "--json", cwd=tmp_path, env=env).stdout)
    owners = {p["name"]: p["provides"] for p in listed}
    assert "realistic" in owners["compositor-realistic"]["compositor"]
    assert "compositor" not in owners["hijack"]
    # Its new command is added.
    hello = run_docsynth("hello", cwd=tmp_path, env=env)
    assert hello.returncode == 0 and hello.stdout.strip() == "hello from a plugin"


@pytest.mark.slow
def test_plugins_uninstall_refuses_docsynth_and_unknown_names(tmp_path):
    # A stand-in pip shadows the real one, so that a regression cannot uninstall anything.
    fake = tmp_path / "fake" / "pip"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text("print('PIP CALLED')\n")
    env = {"PYTHONPATH": str(fake.parent)}
    itself = run_docsynth("plugins", "uninstall", "docsynth", cwd=tmp_path, env=env)
    fails(itself, "docsynth", "pip uninstall")
    unknown = run_docsynth("plugins", "uninstall", "no-such-plugin-xyz", cwd=tmp_path, env=env)
    fails(unknown, "no-such-plugin-xyz", "not installed")
    not_plugin = run_docsynth("plugins", "uninstall", "pyyaml", cwd=tmp_path, env=env)
    fails(not_plugin, "pyyaml", "not a docsynth plugin")
    assert "PIP CALLED" not in itself.stdout + unknown.stdout + not_plugin.stdout


# ---------------------------------------------------------------------------------------------
# Outputs never replace inputs, nor files docsynth did not write (without --force)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A tiny generated dataset (4 samples), shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("data")
    made = run_docsynth("generate", "--count", "4", "--out", "ds", "--json", cwd=root)
    assert made.returncode == 0, made.stderr
    return root / "ds"


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    png(folder / "a.jpg", 80, 60)
    png(folder / "b.png", 80, 60, value=90)
    return folder


@pytest.mark.slow
def test_scan_into_the_photo_folder_is_refused(tmp_path, photos):
    before = snapshot(photos)
    fails(run_docsynth("scan", "photos", "--out", "photos", cwd=tmp_path), "photos", "input")
    fails(run_docsynth("scan", "photos", "--out", "photos", "--force", cwd=tmp_path), "input")
    # A single photo scanned into its own folder: the page would be photos/a.jpg itself.
    fails(run_docsynth("scan", "photos/a.jpg", "--out", "photos", "--force", cwd=tmp_path),
          "photos/a.jpg", "replace an input")
    assert snapshot(photos) == before


@pytest.mark.slow
def test_scan_keeps_a_users_file_in_out_without_force(tmp_path, photos):
    mine = png(tmp_path / "out" / "a.jpg", 10, 10)
    before = mine.read_bytes()
    fails(run_docsynth("scan", "photos", "--out", "out", cwd=tmp_path), "out/a.jpg", "--force")
    assert mine.read_bytes() == before and not (tmp_path / "out" / "corners.csv").exists()


@pytest.mark.slow
def test_stats_plot_never_replaces_a_file_without_force(tmp_path, dataset):
    mine = tmp_path / "existing.png"
    mine.write_bytes(b"my picture")
    fails(run_docsynth("stats", str(dataset), "--plot", "existing.png", cwd=tmp_path), "existing.png", "--force")
    assert mine.read_bytes() == b"my picture"
    image = dataset / "images" / "0000000.jpg"
    before = image.read_bytes()
    fails(run_docsynth("stats", str(dataset), "--plot", str(image), "--force", cwd=tmp_path), "replace an input")
    assert image.read_bytes() == before
    done = run_docsynth("stats", str(dataset), "--plot", "existing.png", "--force", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert mine.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_preview_and_export_never_touch_the_dataset(tmp_path, dataset):
    before = snapshot(dataset)
    image = dataset / "images" / "0000001.jpg"
    fails(run_docsynth("preview", str(dataset), "--out", str(image), "--force", cwd=tmp_path), "replace an input")
    # --force clears an export folder: never one that holds the dataset.
    fails(run_docsynth("export", str(dataset), "--format", "coco", "--out", str(dataset.parent), "--force",
                       cwd=tmp_path), "holds the input")
    assert snapshot(dataset) == before


@pytest.mark.slow
def test_generate_force_never_clears_its_own_input(tmp_path):
    docs = tmp_path / "docs"
    for i in range(2):
        png(docs / "images" / f"p{i}.png", 120, 160)
    before = snapshot(docs)
    fails(run_docsynth("generate", "--documents", "docs", "--out", "docs", "--force", "--count", "2",
                       cwd=tmp_path), "docs", "input")
    assert snapshot(docs) == before


@pytest.mark.slow
def test_export_model_never_replaces_its_checkpoint(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights")
    fails(run_docsynth("export-model", "model.pt", "--out", "model.pt", "--force", cwd=tmp_path), "replace an input")
    assert ckpt.read_bytes() == b"weights"


# ---------------------------------------------------------------------------------------------
# Unwritable outputs: one line naming the path, before any work
# ---------------------------------------------------------------------------------------------

PACKAGED = REPO / "docsynth" / "assets" / "docsynth-cpu.pt"

UNWRITABLE = {  # command -> arguments; {D}: the dataset, {B}: a path under a regular file
    "generate": ["generate", "--count", "2", "--out", "{B}"],
    "scan": ["scan", "photos", "--out", "{B}"],
    "split": ["split", "{D}", "--out", "{B}"],
    "train": ["train", "{D}", "--out", "{B}", "--epochs", "1"],
    "export": ["export", "{D}", "--format", "coco", "--out", "{B}"],
    "preview": ["preview", "{D}", "--out", "{B}.png"],
    "evaluate": ["evaluate", "photos", "--out", "{B}"],
    "export-model": ["export-model", str(PACKAGED), "--out", "{B}.onnx"],
    "report": ["report", "photos", "--out", "{B}.html"],
    "stats": ["stats", "{D}", "--plot", "{B}.png"],
    "run": ["run", "bad.yaml"],
}


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(UNWRITABLE))
def test_output_under_a_regular_file_is_one_line(tmp_path, dataset, photos, command):
    (tmp_path / "blocker").write_text("a file, not a folder")
    (tmp_path / "bad.yaml").write_text("run:\n  dir: blocker/run\n")
    args = [a.replace("{D}", str(dataset)).replace("{B}", "blocker/out") for a in UNWRITABLE[command]]
    started = time.monotonic()
    line = fails(run_docsynth(*args, cwd=tmp_path), "blocker")
    assert "is a file" in line or "not a folder" in line
    assert time.monotonic() - started < 30  # refused up front, not after the work
    assert (tmp_path / "blocker").read_text() == "a file, not a folder"


def _small_disk(limit: int):
    """A file-size limit stands in for a full disk (CPython ignores SIGXFSZ, so writes past it
    fail with an OSError, in the workers too)."""
    import resource

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_disk_full_during_generate_is_one_line(tmp_path):
    env = {**os.environ, "DOCSYNTH_LOAD_PLUGINS": "docsynth"}
    result = subprocess.run([sys.executable, "-m", "docsynth", "generate", "--count", "8", "--workers", "2",
                             "--out", "ds"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120, preexec_fn=_small_disk(3000))
    line = fails(result, "ds/", code=1)
    assert "RemoteTraceback" not in result.stderr and "File too large" in line


# ---------------------------------------------------------------------------------------------
# Stopping: Ctrl-C within a second, no worker left behind
# ---------------------------------------------------------------------------------------------

linux_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _start_long_generate(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    """A 2-worker generate that runs for minutes; returns once a shard is done."""
    (tmp_path / "docsynth.yaml").write_text(
        "generate:\n  documents_count: 2\n  backgrounds_count: 2\n  shard_size: 4\n"
        "  compositor_options: {size: [96, 128]}\n")
    env = {**os.environ, "DOCSYNTH_LOAD_PLUGINS": "docsynth"}
    proc = subprocess.Popen([sys.executable, "-m", "docsynth", "generate", "--count", "6000", "--workers", "2",
                             "--out", "ds"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # its own group, like a terminal's job
    deadline = time.monotonic() + 90
    while not list((tmp_path / "ds" / "shards").glob("*.jsonl")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert len(workers) == 2, workers
    return proc, workers


@pytest.mark.slow
@linux_proc
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_stops_generate_within_a_second(tmp_path, presses):
    proc, workers = _start_long_generate(tmp_path)
    started = time.monotonic()
    for _ in range(presses):
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        time.sleep(0.05)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    seconds = time.monotonic() - started
    assert seconds < 3, seconds  # about 0.3-0.9 s on 2 busy cores; a hang was the bug
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines() == ["docsynth: interrupted; rerun the same command to resume"]
    time.sleep(0.2)
    assert not [w for w in workers if _running(w)]
    # Finished shards are kept, each with its files.
    shards = sorted((tmp_path / "ds" / "shards").glob("*.jsonl"))
    assert shards
    for shard in shards:
        for row in (json.loads(line) for line in shard.read_text().splitlines()):
            assert (tmp_path / "ds" / row["image"]).is_file() and (tmp_path / "ds" / row["mask"]).is_file()


@pytest.mark.slow
@linux_proc
def test_workers_die_with_a_killed_generate(tmp_path):
    proc, workers = _start_long_generate(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    deadline = time.monotonic() + 5
    while [w for w in workers if _running(w)] and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [w for w in workers if _running(w)]
    for pid in left:  # do not leave them running if the check fails
        os.kill(pid, signal.SIGKILL)
    assert not left


# ---------------------------------------------------------------------------------------------
# Config: ranges, duplicate keys and plugin options, all up front with file and line
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_config_ranges_and_duplicate_keys_reported_with_file_and_line(tmp_path):
    (tmp_path / "docsynth.yaml").write_text(textwrap.dedent("""\
        seed: -1
        generate:
          count: -5
          compositor_options:
            landscape_p: 3
        train:
          lr: -0.1
    """))
    result = run_docsynth("config", "show", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[3] for line in lines] == ["1", "3", "5", "7"], lines
    assert all(line.startswith("docsynth: error: docsynth.yaml:") for line in lines)
    assert "'train.lr' is -0.1, expected a number >= 0" in lines[3]
    assert "probability" in lines[2]
    (tmp_path / "docsynth.yaml").write_text("generate:\n  workers: 2\n  workers: 3\n")
    fails(run_docsynth("config", "show", cwd=tmp_path), "docsynth.yaml:3", "duplicate key 'workers'")
    (tmp_path / "docsynth.yaml").unlink()
    fails(run_docsynth("generate", "--seed", "-1", "--count", "1", cwd=tmp_path), "'seed' is -1")


@pytest.mark.slow
def test_bad_compositor_options_stop_run_before_the_first_stage(tmp_path):
    (tmp_path / "docsynth.yaml").write_text(textwrap.dedent("""\
        run:
          dir: r
          stages: [sources, backgrounds, generate]
        generate:
          compositor_options: {size: [192]}
    """))
    fails(run_docsynth("run", cwd=tmp_path), "docsynth.yaml:5", "generate.compositor_options.size", "[width, height]")
    assert not (tmp_path / "r" / "sources").exists()


# ---------------------------------------------------------------------------------------------
# Bad images: every skipped file named, sizes bounded, scan goes on
# ---------------------------------------------------------------------------------------------


def _bomb_png(path: Path, side: int = 20000) -> Path:
    """A tiny PNG whose header says side x side pixels (it would take gigabytes to decode)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.slow
def test_generate_names_every_unreadable_page_and_background(tmp_path):
    docs, bgs = tmp_path / "docs", tmp_path / "bgs"
    png(docs / "good.png", 120, 160)
    good = (docs / "good.png").read_bytes()
    (docs / "truncated.png").write_bytes(good[: len(good) // 2])
    png(docs / "tiny.png", 1, 1)
    _bomb_png(docs / "bomb.png")
    png(bgs / "wood.png", 200, 150, value=120)
    (bgs / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    started = time.monotonic()
    result = run_docsynth("generate", "--documents", "docs", "--backgrounds", "bgs", "--per-document", "2",
                          "--out", "ds", "--json", cwd=tmp_path)
    # Samples of the unreadable pages failed: the dataset is incomplete, and exit 1 says so.
    fails(result, "incomplete", "6 of 8 samples failed", "failed.jsonl", code=1)
    assert time.monotonic() - started < 60
    assert all(line.startswith("docsynth:") for line in result.stderr.splitlines()), result.stderr  # no libpng noise
    summary = json.loads(result.stdout)
    skipped = {Path(s["file"]).name: s["reason"] for s in summary["skipped"]}
    assert set(skipped) >= {"truncated.png", "tiny.png", "bomb.png"}, skipped
    assert "too small" in skipped["tiny.png"] and "megapixels" in skipped["bomb.png"]
    notes = [line for line in result.stderr.splitlines() if not line.startswith("docsynth: error:")]
    for name in skipped:
        assert sum(name in line for line in notes) == 1  # named once, on stderr
    if "broken.jpg" not in skipped:  # only when a sample drew it: then it must be named too
        assert "broken.jpg" not in result.stderr
    assert summary["samples"] == 2


@pytest.mark.slow
def test_scan_skips_an_unreadable_photo_and_goes_on(tmp_path, photos):
    (photos / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    _bomb_png(photos / "d.png")
    result = run_docsynth("scan", "photos", "--out", "out", "--json", cwd=tmp_path)
    fails(result, "2 of 4 photos could not be read", code=1)  # the others are scanned; exit 1 tells
    summary = json.loads(result.stdout)
    assert summary["photos"] == 4 and summary["skipped"] == 2
    reasons = {Path(r["image"]).name: r["reason"] for r in summary["results"]}
    assert "c.png" in reasons["c.png"] and "megapixels" in reasons["d.png"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("docsynth: warning:")]
    assert len(warnings) == 2 and any("c.png" in w for w in warnings) and any("d.png" in w for w in warnings)
    rows = (tmp_path / "out" / "corners.csv").read_text().splitlines()
    assert len(rows) == 5  # header + every photo, the skipped ones with empty corners


@pytest.mark.slow
def test_evaluate_skips_unreadable_photos_names_them_and_scores_the_rest(tmp_path, photos):
    """A text file named x.jpg and a cut-off JPEG among annotated photos: one warning line each,
    listed under "skipped" in --json, and the readable photos are scored by every method."""
    import cv2

    whole = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8))[1].tobytes()
    (photos / "cut.jpg").write_bytes(whole[: len(whole) // 2])  # a download that stopped half-way
    (photos / "x.jpg").write_text("this is not a photo\n")
    quad = "10,10,70,10,70,50,10,50"
    (photos / "corners.csv").write_text("image,tl_x,tl_y,tr_x,tr_y,br_x,br_y,bl_x,bl_y\n"
                                        + "".join(f"{n},{quad}\n" for n in ("a.jpg", "b.png", "cut.jpg", "x.jpg")))
    before = snapshot(photos)
    result = run_docsynth("evaluate", "photos", "--baseline", "classical", "--out", "report", "--json", cwd=tmp_path)
    fails(result, "2 photos of photos could not be read", code=1)  # scored without them: exit 1 says so
    warnings = [line for line in result.stderr.splitlines() if line.startswith("docsynth: warning:")]
    assert len(warnings) == 2, result.stderr  # one line per file, not one per method
    assert any("x.jpg" in w and "not a readable image" in w for w in warnings), warnings
    assert any("cut.jpg" in w and "truncated JPEG" in w for w in warnings), warnings
    report = json.loads(result.stdout)
    assert sorted(s["image"] for s in report["skipped"]) == ["cut.jpg", "x.jpg"]
    assert set(report["methods"]) == {"model:refine", "classical"}
    for method in report["methods"].values():
        assert method["count"] == 2 and {r["image"] for r in method["images"]} == {"a.jpg", "b.png"}
    assert json.loads((tmp_path / "report" / "results.json").read_text())["skipped"] == report["skipped"]
    assert snapshot(photos) == before
    # nothing readable at all: one line, non-zero exit, no report
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_text("not a photo")
    (tmp_path / "bad" / "corners.csv").write_text(f"image,tl_x,tl_y,tr_x,tr_y,br_x,br_y,bl_x,bl_y\nx.jpg,{quad}\n")
    fails(run_docsynth("evaluate", "bad", "--baseline", "classical", "--out", "r2", cwd=tmp_path),
          "none of its 1 photos could be read", "x.jpg")
    assert not (tmp_path / "r2" / "results.json").exists()


# ---------------------------------------------------------------------------------------------
# Failures that must not leave a mess: plugin bugs, partial outputs, corrupt records
# ---------------------------------------------------------------------------------------------

RAISER = '''
from docsynth.hookspecs import hookimpl


class Raiser:
    name = "raiser"
    description = "fails on real pages"

    def compose(self, page, background, rng, options):
        if page.image.shape[0] > 300:  # the small up-front sample passes, real pages do not
            raise RuntimeError("plugin bug")
        from docsynth.options import build
        from docsynth_compose.compositor_homography import HomographyCompositor
        homography = HomographyCompositor()
        return homography.compose(page, background, rng, build(homography, options))


class Broken:
    name = "broken"
    description = "always fails"

    def compose(self, page, background, rng, options):
        raise KeyError("size")


@hookimpl
def register_compositors(register):
    register(Raiser())
    register(Broken())
'''


@pytest.mark.slow
def test_a_failing_plugin_compositor_is_one_line_naming_it(tmp_path):
    import importlib

    if not hasattr(importlib.import_module("docsynth_compose.compositor_homography"), "HomographyCompositor"):
        pytest.skip("homography compositor class renamed")
    site = _site_with(tmp_path, "raiser-plugin", "raiser", RAISER)
    env = {"PYTHONPATH": str(site), "DOCSYNTH_LOAD_PLUGINS": "docsynth,raiser-plugin"}
    up_front = run_docsynth("generate", "--compositor", "broken", "--count", "4", "--out", "a", cwd=tmp_path, env=env)
    fails(up_front, "compositor 'broken'", "raiser-plugin", "KeyError")
    assert not (tmp_path / "a").exists()
    later = run_docsynth("generate", "--compositor", "raiser", "--count", "4", "--workers", "2", "--out", "b",
                         cwd=tmp_path, env=env)
    fails(later, "compositor 'raiser'", "raiser-plugin", "failed on sample", "plugin bug")


def _damaged_copy(dataset: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(dataset, dest)
    (dest / "images" / "0000003.jpg").rename(dest / "moved.jpg")
    return dest


@pytest.mark.slow
def test_failed_export_and_split_leave_nothing_that_blocks_the_rerun(tmp_path, dataset):
    ds = _damaged_copy(dataset, tmp_path / "ds")
    fails(run_docsynth("export", "ds", "--format", "reference", "--out", "ex", cwd=tmp_path), "0000003.jpg")
    assert not (tmp_path / "ex").exists()
    fails(run_docsynth("split", "ds", "--out", "sp", "--valid-fraction", "0.5", cwd=tmp_path), "0000003.jpg")
    assert not [p for p in (tmp_path / "sp").rglob("*") if p.is_file()]
    (ds / "moved.jpg").rename(ds / "images" / "0000003.jpg")
    assert run_docsynth("export", "ds", "--format", "reference", "--out", "ex", cwd=tmp_path).returncode == 0
    assert run_docsynth("split", "ds", "--out", "sp", "--valid-fraction", "0.5", cwd=tmp_path).returncode == 0


@pytest.mark.slow
def test_a_corrupt_stage_record_is_called_corrupt(tmp_path):
    (tmp_path / "docsynth.yaml").write_text(textwrap.dedent("""\
        run: {dir: r, stages: [generate], report: false}
        generate: {documents_count: 2, backgrounds_count: 2, per_document: 1}
    """))
    stage = tmp_path / "r" / "generate"
    stage.mkdir(parents=True)
    (stage / ".stage.json").write_text('{"stage": "generate", "key": ')
    (stage / "run.yaml").write_text("partial")
    fails(run_docsynth("run", cwd=tmp_path), ".stage.json", "corrupt", "delete")


NO_TORCH = '''
import sys
from importlib.abc import MetaPathFinder


class NoTorch(MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in ("torch", "torchvision"):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


sys.meta_path.insert(0, NoTorch())
'''


@pytest.mark.slow
def test_run_without_torch_says_so_before_the_first_stage(tmp_path):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(NO_TORCH)  # as if torch were not installed
    (tmp_path / "docsynth.yaml").write_text("run: {dir: r}\n")
    result = run_docsynth("run", cwd=tmp_path, env={"PYTHONPATH": str(hide)})
    fails(result, "stages 'train' and 'evaluate' need PyTorch", "pip install torch")
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------
# What a newcomer sees: the report and split --check say what they mean
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_split_check_says_what_is_grouped_and_what_is_shared(tmp_path, dataset):
    assert run_docsynth("split", str(dataset), "--out", "sp", "--valid-fraction", "0.5", cwd=tmp_path).returncode == 0
    check = run_docsynth("split", "sp", "--check", "--json", cwd=tmp_path)
    report = json.loads(check.stdout)
    human = run_docsynth("split", "sp", "--check", cwd=tmp_path).stdout
    shared = len(report["shared_backgrounds"])
    assert "Grouped by document" in human and "(no leak)" in human
    if shared:  # the old wording said "0 backgrounds appear in both splits: no leak" here
        assert f"{shared} of " in human and "backgrounds are in both splits (allowed" in human


def test_report_tiles_number_corners_from_zero_and_epochs_are_whole():
    from docsynth.viz import _ticks, caption, svg_chart

    assert all(float(t).is_integer() for t in _ticks(1, 2, whole=True))
    chart = svg_chart("loss", {"loss": [(1, 0.5), (2, 0.4)]})
    assert ">1.5<" not in chart and ">1<" in chart and ">2<" in chart
    tile = caption(np.zeros((40, 60, 3), np.uint8), "a very long caption that cannot fit")
    assert tile.shape == (58, 60, 3) and (tile[:40] == 0).all()  # under the picture, not over it


@pytest.mark.slow
def test_compositor_flag_does_not_inherit_another_compositors_options(tmp_path):
    (tmp_path / "docsynth.yaml").write_text((REPO / "docsynth.yaml").read_text())  # realistic's options
    result = run_docsynth("generate", "--compositor", "reference", "--count", "2", "--out", "ds", "--workers", "1",
                          cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "compositor_options are for 'realistic'" in result.stderr


@pytest.mark.slow
def test_train_prints_a_line_per_epoch_when_stderr_is_not_a_terminal(tmp_path):
    pytest.importorskip("torch")
    made = run_docsynth("generate", "--count", "6", "-k", "1", "--out", "ds", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    result = run_docsynth("train", "ds", "--backbone", "compact", "--epochs", "2", "--input-size", "64",
                          "--batch-size", "1", "--workers", "0", "--out", "tr", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    epochs = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
