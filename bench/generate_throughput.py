"""How fast is `docsynth generate`, compared with the least work any generator must do?

On one core (the process pins itself to CPU 0 when it can, OpenCV uses one thread, generate
uses one worker) it measures, on the same inputs (12 procedural pages as PNG files, 24
procedural backgrounds as 1024x768 JPEG files) and output size (480x640, 40% landscape):

- the FLOOR loop, per sample: one background JPEG decode, one resize, one warpPerspective of
  page and mask, one alpha blend, one JPEG q95 image write and one PNG mask write;
- ms per sample of generate (in-process, after start-up) with each compositor preset;
- whole-process CPU time of `docsynth generate --count N` (N = 600 by default) against the
  whole-process CPU time of the floor loop for N samples (both fresh Python processes), on two
  workloads: the bench's own inputs above, and the "folder" layout of a typical first run
  (24 pages 480x640, 60 backgrounds 1280x853, 25 composites per page: 600 samples);
- scaling: wall time of `generate --workers 2` against `--workers 1` (realistic, 600 samples),
  with both cores allowed (pause other work on the machine for this one).

Goals (issue 29), printed with True/False: realistic whole process <= 0.8x the floor on both
workloads (the aim is 0.5x), reference <= 0.7x, two workers >= 1.8x one.
``--profile PRESET`` prints a cProfile summary of generate instead; ``bench/generate_steps.py``
breaks a sample's time down by step.

    python bench/generate_throughput.py [--samples 200] [--whole 600] [--json] [--profile realistic]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRESETS = ("homography", "reference", "realistic")
GOALS = {"reference": 2.0, "realistic": 3.0}

FLOOR_CODE = r'''
import sys, time, glob, cv2, numpy as np
cv2.setNumThreads(1)
pages_dir, bgs_dir, out_dir, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pages = [cv2.imread(p) for p in sorted(glob.glob(pages_dir + "/*.png"))]
bgs = sorted(glob.glob(bgs_dir + "/*.jpg"))
rng = np.random.default_rng(0)
t0, c0 = time.perf_counter(), time.process_time()
for i in range(n):
    w, h = (640, 480) if i % 5 < 2 else (480, 640)
    page = pages[(i // 4) % len(pages)]
    ph, pw = page.shape[:2]
    bg = cv2.imdecode(np.fromfile(bgs[i % len(bgs)], np.uint8), cv2.IMREAD_COLOR)
    bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_AREA)
    s = 0.6 * min(w / pw, h / ph)
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    dst = np.float32(src * s + rng.uniform(-0.05, 0.05, (4, 2)) * (w, h) + (w * 0.2, h * 0.2))
    H = cv2.getPerspectiveTransform(src, dst)
    mask_src = np.full((ph, pw), 255, np.uint8)
    warped = cv2.warpPerspective(page, H, (w, h))
    mask = cv2.warpPerspective(mask_src, H, (w, h))
    a = mask[..., None].astype(np.float32) / 255
    image = (warped * a + bg * (1 - a)).astype(np.uint8)
    cv2.imwrite(f"{out_dir}/{i:07d}.jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(f"{out_dir}/{i:07d}.png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 3])
print(time.perf_counter() - t0, time.process_time() - c0)
'''


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["OPENCV_FOR_THREADS_NUM"] = "1"  # inherited by the subprocesses (OpenCV reads this name)


def make_inputs(root: Path) -> tuple[Path, Path]:
    """12 procedural pages (PNG, the renderer's size) and 24 procedural backgrounds (JPEG q90,
    1024x768), made once."""
    return _procedural_inputs(root, "", seed=1, pages=12, page_size=None, backgrounds=24, background_size=(1024, 768))


def make_folder_inputs(root: Path) -> tuple[Path, Path]:
    """The "folder" workload: 24 procedural pages at 480x640 (PNG) and 60 procedural
    backgrounds at 1280x853 (JPEG q90), made once."""
    return _procedural_inputs(root, "folder-", seed=2, pages=24, page_size=(480, 640), backgrounds=60,
                              background_size=(1280, 853))


def _procedural_inputs(root: Path, prefix: str, *, seed: int, pages: int, page_size: tuple[int, int] | None,
                       backgrounds: int, background_size: tuple[int, int]) -> tuple[Path, Path]:
    """``root/{prefix}pages`` and ``root/{prefix}backgrounds`` of procedural inputs, made once
    (a ``done`` file marks each finished folder)."""
    import cv2

    from docsynth import plugins
    from docsynth.options import build

    page_dir, bg_dir = root / f"{prefix}pages", root / f"{prefix}backgrounds"
    if (page_dir / "done").exists() and (bg_dir / "done").exists():
        return page_dir, bg_dir
    page_dir.mkdir(parents=True, exist_ok=True)
    bg_dir.mkdir(parents=True, exist_ok=True)
    src = plugins.get("source", "procedural")
    for i, ref in enumerate(src.list_documents(build(src, {"seed": seed, "count": pages}))[:pages]):
        image = src.load_document(ref).image
        if page_size is not None:
            image = cv2.resize(image, page_size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(page_dir / f"page{i:02d}.png"), image)
    prov = plugins.get("background", "procedural")
    listed = prov.list_backgrounds(build(prov, {"seed": seed, "count": backgrounds, "size": list(background_size)}))
    for i, ref in enumerate(listed[:backgrounds]):
        cv2.imwrite(str(bg_dir / f"bg{i:02d}.jpg"), prov.load_background(ref), [cv2.IMWRITE_JPEG_QUALITY, 90])
    (page_dir / "done").touch()
    (bg_dir / "done").touch()
    return page_dir, bg_dir


def config(pages: Path, bgs: Path, out: Path, preset: str, count: int, labels: list[str] | None = None):
    """The benchmark's generate config: one worker, seed 7, 40% landscape frames for every preset."""
    from docsynth import config as config_mod

    return config_mod.load(None, {
        "generate.documents": str(pages), "generate.backgrounds": str(bgs), "generate.out": str(out),
        "generate.count": count, "generate.workers": 1, "generate.compositor": preset, "seed": 7,
        "generate.compositor_options": {"landscape_p": 0.4} if preset == "homography" else None,
        "generate.labels": labels or None,
    }, cwd=out.parent)


def in_process(pages: Path, bgs: Path, root: Path, preset: str, count: int) -> tuple[float, float]:
    """(wall, CPU) ms per sample of generate (pools built from the folders)."""
    from docsynth.generate.shards import generate

    out = root / f"gen-{preset}"
    shutil.rmtree(out, ignore_errors=True)
    generate(config(pages, bgs, out, preset, 8), force=True)  # warm imports and caches
    shutil.rmtree(out, ignore_errors=True)
    t0, c0 = time.perf_counter(), time.process_time()
    generate(config(pages, bgs, out, preset, count), force=True)
    return (time.perf_counter() - t0) / count * 1000, (time.process_time() - c0) / count * 1000


def floor_in_process(pages: Path, bgs: Path, root: Path, count: int) -> tuple[float, float]:
    """(wall, CPU) ms per sample of the floor loop."""
    out = root / "floor"
    out.mkdir(exist_ok=True)
    wall, cpu = map(float, subprocess.run([sys.executable, "-c", FLOOR_CODE, str(pages), str(bgs), str(out), str(count)],
                                          check=True, capture_output=True, text=True).stdout.split())
    return wall / count * 1000, cpu / count * 1000


def compile_sources() -> None:
    """Byte-compile docsynth and its built-in plugins, as an installed package is: a fresh
    process then loads them instead of compiling about 150 modules (0.2 s here, where
    PYTHONDONTWRITEBYTECODE is set and an editable install never writes its caches)."""
    import compileall

    import docsynth_compose

    import docsynth

    for package in (docsynth, docsynth_compose):
        root = Path(package.__file__).parent
        compileall.compile_dir(str(root.parent if package is docsynth_compose else root), quiet=1)


def whole_process(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of a fresh process, CPU from its resource usage."""
    before = os.times()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return time.perf_counter() - t0, cpu


def generate_cmd(pages: Path, bgs: Path, dest: Path, preset: str, count: int, workers: int = 1,
                 per_document: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "docsynth", "generate", "--documents", str(pages), "--backgrounds", str(bgs),
           "--count", str(count), "--out", str(dest), "--workers", str(workers), "--compositor", preset,
           "--seed", "7", "--force"]
    return cmd + (["--per-document", str(per_document)] if per_document else [])


def whole_ratios(root: Path, pages: Path, bgs: Path, count: int, per_document: int | None) -> dict:
    """Whole-process CPU seconds of the floor loop and of `generate` with each preset."""
    root.mkdir(parents=True, exist_ok=True)
    out = root / "floor-whole"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    _, floor_cpu = whole_process([sys.executable, "-c", FLOOR_CODE, str(pages), str(bgs), str(out), str(count)], root)
    result: dict = {"count": count, "floor_whole_s": round(floor_cpu, 2)}
    for preset in PRESETS:
        dest = root / f"whole-{preset}"
        shutil.rmtree(dest, ignore_errors=True)  # a finished dataset would just be resumed
        _, cpu = whole_process(generate_cmd(pages, bgs, dest, preset, count, per_document=per_document), root)
        result[f"{preset}_whole_s"] = round(cpu, 2)
        result[f"{preset}_whole_ratio"] = round(cpu / floor_cpu, 2)
    return result


def scaling(root: Path, pages: Path, bgs: Path, count: int) -> tuple[float, float]:
    """Wall seconds of realistic `generate` with 1 and with 2 workers, every CPU allowed."""
    root.mkdir(parents=True, exist_ok=True)
    every = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None

    def unpinned():
        if every is not None:
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))

    walls = []
    for workers in (1, 2):
        dest = root / f"workers-{workers}"
        shutil.rmtree(dest, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run(generate_cmd(pages, bgs, dest, "realistic", count, workers), check=True, capture_output=True,
                       cwd=root, preexec_fn=unpinned)
        walls.append(time.perf_counter() - t0)
    return walls[0], walls[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200, help="samples per in-process measurement")
    ap.add_argument("--whole", type=int, default=600, help="samples for the whole-process comparison (0: skip)")
    ap.add_argument("--work", type=Path, default=None, help="folder for inputs and outputs (default: a temp dir)")
    ap.add_argument("--profile", choices=PRESETS, default=None, help="print a cProfile summary for this preset")
    ap.add_argument("--scaling", action="store_true", help="also measure 2 workers against 1 (uses two cores)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    pin_one_core()
    import cv2

    cv2.setNumThreads(1)
    root = args.work or Path(tempfile.mkdtemp(prefix="docsynth-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    pages, bgs = make_inputs(root)

    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        in_process(pages, bgs, root, args.profile, args.samples)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return

    # CPU time is the primary measure: on a shared machine wall time also counts other users.
    result: dict = {"samples": args.samples, "cpu": "1 core (affinity), cv2 threads 1", "ratios_on": "cpu time"}
    floor_wall, floor = floor_in_process(pages, bgs, root, args.samples)
    result["floor_ms"] = round(floor, 2)
    result["floor_wall_ms"] = round(floor_wall, 2)
    for preset in PRESETS:
        wall, ms = in_process(pages, bgs, root, preset, args.samples)
        result[f"{preset}_ms"] = round(ms, 2)
        result[f"{preset}_wall_ms"] = round(wall, 2)
        result[f"{preset}_ratio"] = round(ms / floor, 2)
    if args.whole:
        compile_sources()
        folder_pages, folder_bgs = make_folder_inputs(root)
        for name, (p, b, per_doc) in {"bench": (pages, bgs, None), "folder": (folder_pages, folder_bgs, 25)}.items():
            result[name] = whole_ratios(root / name, p, b, args.whole, per_doc)
    result["goals"] = {
        "realistic<=0.8x floor, whole process (bench, folder)": [
            result[w]["realistic_whole_ratio"] <= 0.8 for w in ("bench", "folder")] if args.whole else None,
        "reference<=0.7x floor, whole process (bench, folder)": [
            result[w]["reference_whole_ratio"] <= 0.7 for w in ("bench", "folder")] if args.whole else None,
    }
    if args.scaling:
        one, two = scaling(root / "scaling", pages, bgs, args.whole or 600)
        result["scaling"] = {"workers_1_wall_s": round(one, 2), "workers_2_wall_s": round(two, 2),
                             "speedup": round(one / two, 2), "cpus": os.cpu_count()}
        result["goals"]["2 workers>=1.8x one"] = one / two >= 1.8
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:32s} {v}")


if __name__ == "__main__":
    main()
