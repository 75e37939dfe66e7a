"""Labels beyond the page (generate.labels): what they cost and how exact they are.

1. Cost: CPU seconds per sample of making samples as `generate` does (realistic compositor,
   480x640 frames, procedural pages; compose plus image and mask encoding) and of each label
   kind on top ([dewarp], [text], [dewarp, text]: maps and file encoding), in one process.
2. Exactness, on samples composed in memory (their page maps at hand) for every built-in
   compositor and its geometric steps: round trip |forward(uv(p)) - p| (px), bm read back
   through uv (share of the page, p95), words' photo_poly looked up in uv against their
   flat_poly (share of the page, p95).
3. A use of the maps: photos (photometric steps off, curl and fold on) flattened through their
   bm, SSIM against the flat page, next to the same bm shifted by half a pixel and to the photo
   merely cropped to the page's bounding box and resized.

    python bench/labels.py [--samples N] [--json] [--figure docs/images/labels.png]

``--figure`` also draws the picture in docs/labels.md (photo, uv as colour, bm checkerboard,
words, the page flattened through bm) for a curled and a folded page.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from docsynth.generate.stream import compose_one

PLAIN = {"negative_p": 0, "small_p": 0, "stacked_p": 0, "multi_p": 0, "card_p": 0, "receipt_p": 0, "held_p": 0,
         "underlay_p": 0, "squash_p": 0, "pipeline": []}
GEOMETRY_CASES = {
    "homography": ("homography", {}),
    "realistic (default)": ("realistic", {}),
    "realistic curl": ("realistic", {"curl_p": 1.0, "squash_p": 0.5}),
    "realistic fold": ("realistic", {"fold_p": 1.0}),
    "reference (flip, rotate, optical/grid/elastic)": ("reference", {}),
}


def cost(samples: int, work: Path) -> dict[str, float]:
    """CPU seconds per sample (one process, one thread for OpenCV: steadier than wall time on a
    shared machine) of making a sample as generate does (compose, encode image and mask), and of
    each label kind on top (maps, encoding the files)."""
    from docsynth import config
    from docsynth.generate.dewarp import label_files
    from docsynth.generate.stream import SampleStream
    from docsynth.io import encode_image, encode_mask

    cv2.setNumThreads(1)
    cfg = config.load(None, {"seed": 11, "generate.documents_count": max(1, samples // 4),
                             "generate.backgrounds_count": 8, "generate.out": str(work / "unused")})
    gen = cfg.generate
    stream = SampleStream.from_config(gen, cfg.seed)
    totals = {"none": 0.0, "dewarp": 0.0, "text": 0.0, "dewarp,text": 0.0}
    for i in range(samples):
        t0 = time.process_time()
        made = stream.render(i)
        assert made is not None  # procedural pages always render
        sample, info = made
        encode_image(sample.image, ".jpg", 95), encode_mask(sample.mask)
        totals["none"] += time.process_time() - t0
        for kinds in (["dewarp"], ["text"], ["dewarp", "text"]):
            t0 = time.process_time()
            label_files(sample, kinds, gen.compositor, info, set())
            totals[",".join(kinds)] += time.process_time() - t0
    out = {"none": totals["none"] / samples}
    out.update({k: out["none"] + v / samples for k, v in totals.items() if k != "none"})
    return out


def geometry_checks(samples: int) -> dict[str, dict[str, float]]:
    from docsynth_sources.procedural import render_page

    from docsynth.generate.dewarp import dewarp_arrays, grid_points, lookup_uv, pixel_centres
    from docsynth.generate.words import word_records
    from docsynth.kinds import Page

    results = {}
    for label, (name, options) in GEOMETRY_CASES.items():
        trip, bm_err, word_err = [], [], []
        for i in range(samples):
            words: list = []
            img = render_page(5, i, long_side=900, words=words)
            page = Page(image=img, mask=np.full(img.shape[:2], 255, np.uint8), words=words)
            rng = np.random.default_rng(i)
            bg = cv2.resize(rng.integers(30, 200, (9, 12, 3), dtype=np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC)
            s = compose_one(name, page, bg, rng, options)
            if s.geometry is None:
                continue
            a = dewarp_arrays(s, s.geometry)
            uv = a["uv"].astype(np.float64)
            h, w = uv.shape[:2]
            on = ~np.isnan(uv[..., 0])
            back = s.geometry.forward(uv[on] * s.geometry.size)
            trip.extend(np.abs(back - pixel_centres(w, h)[on.ravel()]).max(axis=1))
            got = lookup_uv(uv, a["bm"].reshape(-1, 2).astype(np.float64) * (w, h))
            ok = ~np.isnan(got[:, 0])
            bm_err.extend(np.abs(got[ok] - grid_points(448, 448)[ok]).max(axis=1))
            for r in word_records(s.geometry, a["visible"]):
                g = lookup_uv(uv, np.asarray(r["photo_poly"]))
                k = ~np.isnan(g[:, 0])
                word_err.extend(np.abs(g[k] - np.asarray(r["flat_poly"])[k]).max(axis=1))
        results[label] = {"round_trip_max_px": float(np.max(trip)), "round_trip_p99_px": float(np.percentile(trip, 99)),
                          "bm_vs_uv_p95": float(np.percentile(bm_err, 95)), "bm_vs_uv_max": float(np.max(bm_err)),
                          "words_p95": float(np.percentile(word_err, 95)), "words_checked_points": len(word_err)}
    return results


def unwarp_ssim(samples: int) -> dict[str, float]:
    from docsynth_sources.procedural import render_page

    from docsynth.generate.dewarp import dewarp_arrays, ssim, unwarp
    from docsynth.kinds import Page

    true, shifted, cropped = [], [], []
    for i in range(samples):
        img = render_page(7, i, long_side=900)
        page = Page(image=img, mask=np.full(img.shape[:2], 255, np.uint8))
        rng = np.random.default_rng(100 + i)
        bg = cv2.resize(rng.integers(30, 200, (9, 12, 3), dtype=np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC)
        opts = {**PLAIN, "curl_p": 0.5, "fold_p": 0.5, "truncate_p": 0, "size": [720, 960], "landscape_p": 0}
        s = compose_one("realistic", page, bg, rng, opts)
        ph, pw = img.shape[:2]
        gw, gh = round(448 * min(1, pw / ph)), round(448 * min(1, ph / pw))  # the page's aspect
        a = dewarp_arrays(s, s.geometry, size=(gh, gw))
        flat = cv2.resize(img, (gw, gh), interpolation=cv2.INTER_AREA)
        h, w = s.image.shape[:2]
        true.append(ssim(unwarp(s.image, a["bm"]), flat))
        shifted.append(ssim(unwarp(s.image, a["bm"] + np.float32(0.5 / w)), flat))
        ys, xs = np.nonzero(s.mask)
        box = s.image[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        cropped.append(ssim(cv2.resize(box, (gw, gh), interpolation=cv2.INTER_AREA), flat))
    return {"ssim_bm": float(np.mean(true)), "ssim_bm_shifted_half_px": float(np.mean(shifted)),
            "ssim_bbox_resized": float(np.mean(cropped)), "bm_beats_shifted": int(np.sum(np.array(true) > shifted)),
            "samples": samples}


def figure(path: Path) -> None:
    from docsynth_sources.procedural import render_page

    from docsynth.dataset.label_viz import label_panels
    from docsynth.generate.dewarp import dewarp_arrays
    from docsynth.generate.words import word_records
    from docsynth.io import write_image
    from docsynth.kinds import Page
    from docsynth.viz import fit_height, grid

    rows = []
    for seed, bend in ((3, {"curl_p": 1.0}), (8, {"fold_p": 1.0})):
        words: list = []
        img = render_page(21, seed, layout="letter", long_side=900, words=words)
        page = Page(image=img, mask=np.full(img.shape[:2], 255, np.uint8), words=words)
        rng = np.random.default_rng(seed)
        opts = {**PLAIN, **bend, "truncate_p": 0, "negative_p": 0, "landscape_p": 0, "desk_p": 0,
                "close_p": 1.0, "close_area": [0.35, 0.5], "pipeline": [{"step": "hand", "p": 1.0}, "uneven_light"]}
        wood = np.array([60, 95, 140]) + rng.integers(-25, 25, (9, 12, 1))  # a brownish, blotchy table
        bg = cv2.resize(wood.astype(np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC)
        s = compose_one("realistic", page, bg, rng, opts)
        ph, pw = img.shape[:2]
        a = dewarp_arrays(s, s.geometry, size=(448, round(448 * pw / ph)))
        panels = label_panels(s.image, a, word_records(s.geometry, a["visible"]))
        rows += [fit_height(p, 300)[0] for p in panels]
    write_image(path, grid(rows, columns=5, gap=4, background=255, edge=False, max_width=0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--figure", type=Path, help="also draw the docs figure to this .png")
    args = ap.parse_args()
    if args.figure:
        figure(args.figure)
    with tempfile.TemporaryDirectory(prefix="docsynth-labels-") as tmp:
        timing = cost(args.samples, Path(tmp))
    report = {"cpu_seconds_per_sample": timing,
              "extra_cpu_seconds_per_sample": {k: v - timing["none"] for k, v in timing.items() if k != "none"},
              "geometry": geometry_checks(max(4, args.samples // 3)), "unwarp": unwarp_ssim(max(4, args.samples // 2))}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print("generate, CPU s/sample: " + ", ".join(f"{k} {v:.3f}" for k, v in timing.items()))
    for label, r in report["geometry"].items():
        print(f"{label}: round trip max {r['round_trip_max_px']:.2e} px, bm vs uv p95 {r['bm_vs_uv_p95']:.2e}, "
              f"words p95 {r['words_p95']:.2e}")
    u = report["unwarp"]
    print(f"unwarp SSIM: bm {u['ssim_bm']:.3f}, bm shifted 0.5 px {u['ssim_bm_shifted_half_px']:.3f}, "
          f"bbox resized {u['ssim_bbox_resized']:.3f} ({u['bm_beats_shifted']}/{u['samples']} better than shifted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
