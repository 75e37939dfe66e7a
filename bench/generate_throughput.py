"""How fast is `docsynth generate`, compared with the least work any generator must do?

On one core (the process pins itself to CPU 0 when it can, OpenCV uses one thread, generate
uses one worker) it measures, on the same inputs (12 procedural pages as PNG files, 24
procedural backgrounds as 1024x768 JPEG files) and output size (480x640, 40% landscape):

- the FLOOR loop, per sample: one background JPEG decode, one resize, one warpPerspective of
  page and mask, one alpha blend, one JPEG q95 image write and one PNG mask write;
- ms per sample of generate (in-process, after start-up) with each compositor preset;
- whole-process wall time of `docsynth generate --count N` (N = 600 by default) against the
  whole-process wall time of the floor loop for N samples (both fresh Python processes).

Goals (issue 6): reference <= 2.0x floor, realistic <= 3.0x floor, whole-process generate of 600
<= 1.5x the floor loop's. ``--profile PRESET`` prints a cProfile summary of generate instead.

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
    os.environ["OPENCV_NUM_THREADS"] = "1"  # inherited by the subprocesses too


def make_inputs(root: Path) -> tuple[Path, Path]:
    """12 procedural pages (PNG) and 24 procedural backgrounds (JPEG q90), made once."""
    import cv2

    from docsynth import plugins
    from docsynth.options import build

    pages, bgs = root / "pages", root / "backgrounds"
    if (pages / "done").exists() and (bgs / "done").exists():
        return pages, bgs
    pages.mkdir(parents=True, exist_ok=True)
    bgs.mkdir(parents=True, exist_ok=True)
    src = plugins.get("source", "procedural")
    for i, ref in enumerate(src.list_documents(build(src, {"seed": 1, "count": 12}))[:12]):
        cv2.imwrite(str(pages / f"page{i:02d}.png"), src.load_document(ref).image)
    prov = plugins.get("background", "procedural")
    for i, ref in enumerate(prov.list_backgrounds(build(prov, {"seed": 1, "count": 24, "size": [1024, 768]}))[:24]):
        cv2.imwrite(str(bgs / f"bg{i:02d}.jpg"), prov.load_background(ref), [cv2.IMWRITE_JPEG_QUALITY, 90])
    (pages / "done").touch()
    (bgs / "done").touch()
    return pages, bgs


def config(pages: Path, bgs: Path, out: Path, preset: str, count: int):
    from docsynth import config as config_mod

    return config_mod.load(None, {
        "generate.documents": str(pages), "generate.backgrounds": str(bgs), "generate.out": str(out),
        "generate.count": count, "generate.workers": 1, "generate.compositor": preset, "seed": 7,
        "generate.compositor_options": {"landscape_p": 0.4} if preset == "homography" else None,
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


def whole_process(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of a fresh process, CPU from its resource usage."""
    before = os.times()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return time.perf_counter() - t0, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200, help="samples per in-process measurement")
    ap.add_argument("--whole", type=int, default=600, help="samples for the whole-process comparison (0: skip)")
    ap.add_argument("--work", type=Path, default=None, help="folder for inputs and outputs (default: a temp dir)")
    ap.add_argument("--profile", choices=PRESETS, default=None, help="print a cProfile summary for this preset")
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
        out = root / "floor-whole"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        fw_wall, fw_cpu = whole_process([sys.executable, "-c", FLOOR_CODE, str(pages), str(bgs), str(out),
                                         str(args.whole)], root)
        result["whole_count"] = args.whole
        result["floor_whole_s"] = round(fw_cpu, 2)
        result["floor_whole_wall_s"] = round(fw_wall, 2)
        exe = [sys.executable, "-m", "docsynth"]
        for preset in PRESETS:
            dest = root / f"whole-{preset}"
            shutil.rmtree(dest, ignore_errors=True)  # a finished dataset would just be resumed
            cmd = exe + ["generate", "--documents", str(pages), "--backgrounds", str(bgs), "--count", str(args.whole),
                         "--out", str(dest), "--workers", "1", "--compositor", preset, "--seed", "7", "--force"]
            wall, cpu = whole_process(cmd, root)
            result[f"{preset}_whole_s"] = round(cpu, 2)
            result[f"{preset}_whole_wall_s"] = round(wall, 2)
            result[f"{preset}_whole_ratio"] = round(cpu / fw_cpu, 2)
    result["goals"] = {
        "reference<=2.0x": result["reference_ratio"] <= 2.0,
        "realistic<=3.0x": result["realistic_ratio"] <= 3.0,
    }
    if args.whole:
        result["goals"]["whole_process<=1.5x (homography, reference, realistic)"] = [
            result[f"{p}_whole_ratio"] <= 1.5 for p in PRESETS]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:32s} {v}")


if __name__ == "__main__":
    main()
