"""Normalising, near-duplicate removal, texture import and licences of background folders."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.backgrounds.credits import write_credits
from docsynth.backgrounds.dedupe import dedupe_folder, group_duplicates, near_pairs
from docsynth.backgrounds.folder import BackgroundIndex, normalize_folder
from docsynth.backgrounds.licences import licence_code
from docsynth.backgrounds.normalize import Rejected, normalize_bytes
from docsynth.backgrounds.textures import TextureSettings, render_texture


def picture(seed: int, w: int = 240, h: int = 160) -> np.ndarray:
    """A distinct RGB picture with edges and smooth parts (shapes on a smooth field)."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 256, size=(4, 6, 3)).astype(np.float32)
    img = np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)
    for _ in range(6):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.circle(img, (x, y), int(rng.integers(h // 10, h // 3)), c, -1)
    return img


def save(path: str | Path, rgb: np.ndarray, fmt: str | None = None, **kw) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, fmt, **kw)
    return path


def data_of(rgb: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kw)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# normalize
# ---------------------------------------------------------------------------------------------


def test_normalize_bytes_handles_odd_formats():
    rgb = picture(1)
    # EXIF orientation 6: the viewer turns the stored image 90 degrees clockwise.
    stored = np.zeros((80, 120, 3), np.uint8)
    stored[:, :60] = (255, 0, 0)  # left half red -> top after the turn
    stored[:, 60:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = data_of(stored, "JPEG", exif=exif.tobytes(), quality=95)
    out = normalize_bytes(rotated)
    im = np.asarray(Image.open(io.BytesIO(out.jpeg)))
    assert (out.width, out.height) == (80, 120) and im.shape == (120, 80, 3)
    assert im[:50, :, 0].mean() > 200 and im[70:, :, 2].mean() > 200  # red on top, blue below

    cmyk = Image.fromarray(rgb).convert("CMYK")
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=95)
    grey = data_of(rgb[..., 0], "JPEG")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:20, :20, 3] = 0
    frames = [Image.fromarray(picture(s)).convert("P") for s in (2, 3)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    sixteen = io.BytesIO()
    Image.fromarray(rgb[..., 1].astype(np.uint16) * 257).save(sixteen, "PNG")
    cases = {"cmyk": buf.getvalue(), "grey": grey, "rgba-png": data_of(rgba, "PNG"), "webp": data_of(rgb, "WEBP"),
             "gif": gif.getvalue(), "png16": sixteen.getvalue(), "bmp": data_of(rgb, "BMP")}
    for name, data in cases.items():
        out = normalize_bytes(data)
        with Image.open(io.BytesIO(out.jpeg)) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (240, 160), name
        assert out.changed and len(out.phash) == 16
    # CMYK colours survive the conversion (Pillow handles the inversion)
    back = np.asarray(Image.open(io.BytesIO(normalize_bytes(cases["cmyk"]).jpeg))).astype(int)
    assert np.abs(back - rgb.astype(int)).mean() < 12
    # the GIF's first frame, not a later one
    first = np.asarray(Image.open(io.BytesIO(normalize_bytes(cases["gif"]).jpeg))).astype(int)
    assert np.abs(first - picture(2).astype(int)).mean() < np.abs(first - picture(3).astype(int)).mean()
    # an upright RGB JPEG is kept byte for byte
    plain = data_of(rgb, "JPEG", quality=90)
    kept = normalize_bytes(plain)
    assert not kept.changed and kept.jpeg == plain and kept.sha256 == hashlib.sha256(plain).hexdigest()
    # downscaling
    assert normalize_bytes(plain, max_side=120).width == 120


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b"<!DOCTYPE html><html><head><title>Error</title></head></html>", "html"),
    (b'{"detail": "Request was throttled."}', "text"),
    (b"\x00\x01garbage" * 50, "undecodable"),
])
def test_normalize_rejects_non_images(data, reason):
    with pytest.raises(Rejected) as exc:
        normalize_bytes(data)
    assert exc.value.reason == reason


def test_normalize_rejects_truncated_and_tiny():
    full = data_of(picture(4), "JPEG", quality=95)
    with pytest.raises(Rejected) as exc:
        normalize_bytes(full[: len(full) // 2])
    assert exc.value.reason == "truncated"
    png = data_of(picture(4), "PNG")
    with pytest.raises(Rejected) as exc:
        normalize_bytes(png[: len(png) // 2])
    assert exc.value.reason == "truncated"
    with pytest.raises(Rejected) as exc:
        normalize_bytes(full, min_width=300)
    assert exc.value.reason == "too-small"


def test_normalize_folder_in_place_and_idempotent(cli):
    root = Path("bg")
    save(root / "a.jpg", picture(1), quality=90)
    save(root / "b.png", picture(2))
    save(root / "sub/c.webp", picture(3))
    Image.fromarray(picture(4)).convert("CMYK").save(root / "d.jpg", quality=90)
    save(root / "e.png", picture(5))
    save(root / "e.jpg", picture(6), quality=90)  # a name clash with e.png's conversion
    (root / "f.jpg").write_bytes(b"<html><body>404</body></html>")
    (root / "g.jpg").write_bytes(data_of(picture(7), "JPEG")[:3000])
    save(root / "tiny.png", picture(8, 40, 30))
    (root / "notes.txt").write_text("not an image")
    r = cli("backgrounds", "normalize", "bg", "--licence", "CC BY 4.0", "--json")
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["kept"] == 2 and s["converted"] == 4
    assert s["rejected:html"] == 1 and s["rejected:truncated"] == 1 and s["rejected:too-small"] == 1
    assert s["not-an-image"] == 1 and (root / "notes.txt").is_file()  # not an image: it stays where it is
    index = BackgroundIndex(root)
    files = sorted(r["file"] for r in index.records.values())
    assert files == ["a.jpg", "b.jpg", "d.jpg", "e-png.jpg", "e.jpg", "sub/c.jpg"]
    assert all(r["licence"] == "by" and r["licence_version"] == "4.0" for r in index.records.values())
    assert sorted(p.name for p in (root / "originals").rglob("*") if p.is_file()) == ["b.png", "c.webp", "d.jpg", "e.png"]
    assert len([p for p in (root / "rejected").rglob("*") if p.is_file()]) == 3
    for rec in index.records.values():
        with Image.open(root / rec["file"]) as im:
            assert im.mode == "RGB" and im.format == "JPEG"
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    s2 = normalize_folder(root)
    assert s2.get("converted", 0) == 0 and s2["kept"] == 6
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before  # a second run changes nothing

    # The folder provider lists exactly the normalised images, with their records.
    refs = plugins.get("background", "folder").list_backgrounds(options_mod.build(plugins.get("background", "folder"), {"root": "bg"}))
    assert sorted(Path(r.path).relative_to(root).as_posix() for r in refs) == files
    assert all(r.meta["licence"] == "by" for r in refs)


def test_folder_provider_without_records_still_works():
    save("plain/x.jpg", picture(1))
    save("plain/sub/y.png", picture(2))
    save("plain/duplicates/z.jpg", picture(3))
    refs = plugins.get("background", "folder").list_backgrounds(options_mod.build(plugins.get("background", "folder"), {"root": "plain"}))
    assert [r.id for r in refs] == ["sub/y", "x"]


# ---------------------------------------------------------------------------------------------
# dedupe
# ---------------------------------------------------------------------------------------------


def brute_pairs(h: np.ndarray, t: int) -> set[tuple[int, int]]:
    x = h[:, None] ^ h[None, :]
    d = np.bitwise_count(x)
    i, j = np.nonzero(np.triu(d <= t, 1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


@pytest.mark.parametrize("threshold", [0, 3, 6, 10, 40])
def test_multi_index_search_finds_exactly_the_brute_force_pairs(threshold):
    rng = np.random.default_rng(threshold)
    base = rng.integers(0, 2 ** 63, size=300, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    near = base[:100].copy()
    for k in range(100):  # flip 0..12 random bits
        for bit in rng.choice(64, size=int(rng.integers(0, 13)), replace=False):
            near[k] ^= np.uint64(1) << np.uint64(int(bit))
    h = np.concatenate([base, near, base[:5]])  # plus exact copies
    pairs, dist = near_pairs(h, threshold)
    assert set(map(tuple, pairs.tolist())) == brute_pairs(h, threshold)
    assert (dist <= threshold).all()


def test_grouping_keeps_the_largest_and_does_not_chain():
    h = np.array([0b0, 0b111, 0b111111, 0b111111111111], dtype=np.uint64)  # steps of 3 bits
    groups = group_duplicates(h, [10, 50, 20, 5], threshold=3)
    # image 1 (largest) takes its neighbours 0 and 2; image 3 is 6 bits from 1 and survives
    assert [(g.keep, sorted(g.duplicates)) for g in groups] == [(1, [(0, 3), (2, 3)])]


def test_dedupe_real_near_duplicates(cli):
    root = Path("bg")
    distinct = [picture(100 + k, 320, 240) for k in range(12)]
    for k, img in enumerate(distinct):
        save(root / f"img{k:02d}.jpg", img, quality=92)
    # Copies a scraper would meet: resized, recompressed, slightly cropped, colour-shifted.
    a, b, c = distinct[0], distinct[1], distinct[2]
    save(root / "a_small.jpg", cv2.resize(a, (200, 150), interpolation=cv2.INTER_AREA))
    save(root / "a_q30.jpg", a, quality=30)
    save(root / "b_crop.jpg", b[5:-5, 6:-6])  # 2% off each side (phash moves ~2 bits per 1% crop)
    shifted = np.clip(b.astype(int) + (18, -10, 12), 0, 255).astype(np.uint8)
    save(root / "b_tint.jpg", shifted)
    save(root / "c_big.png", cv2.resize(c, (400, 300), interpolation=cv2.INTER_CUBIC))  # bigger than the original
    normalize_folder(root)

    r = cli("backgrounds", "dedupe", "bg", "--json")
    plan = json.loads(r.stdout)
    groups = {g["keep"]: sorted(d["id"] for d in g["duplicates"]) for g in plan["groups"]}
    assert groups == {"img00": ["a_q30", "a_small"], "img01": ["b_crop", "b_tint"], "c_big": ["img02"]}
    assert not plan["applied"] and len(list(root.glob("*.jpg"))) == 17

    r = cli("backgrounds", "dedupe", "bg", "--apply", "--json")
    assert json.loads(r.stdout)["duplicates"] == 5
    left = sorted(p.stem for p in root.glob("*.jpg"))
    assert left == ["c_big"] + [f"img{k:02d}" for k in range(12) if k != 2]  # every distinct image survives
    assert sorted(p.stem for p in (root / "duplicates").glob("*.jpg")) == ["a_q30", "a_small", "b_crop", "b_tint", "img02"]
    rec = BackgroundIndex(root).records["b_tint"]
    assert rec["file"] == "duplicates/b_tint.jpg" and rec["duplicate_of"] == "img01" and rec["distance"] <= 6
    # nothing left to find; the folder provider no longer lists the duplicates
    assert dedupe_folder(root, 6)["duplicates"] == 0
    assert len(plugins.get("background", "folder").list_backgrounds(options_mod.build(plugins.get("background", "folder"), {"root": "bg"}))) == 12


def test_hash_matches_between_different_textures_are_not_confirmed(cli):
    """Stationary textures can hash a few bits apart; their thumbnails tell them apart."""
    root = Path("bg")
    rng = np.random.default_rng(0)
    pebbles = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3)).astype(np.uint8), (5, 5), 0)
    stripes = np.zeros((240, 320, 3), np.uint8)
    stripes[:, ::12] = 200
    save(root / "pebbles.jpg", pebbles)
    save(root / "stripes.jpg", stripes)
    save(root / "pebbles_q40.jpg", pebbles, quality=40)
    normalize_folder(root)
    index = BackgroundIndex(root)
    for rec in index.records.values():  # force a hash collision, as real textures can have
        rec["phash"] = "8000000000000000"
    index.save()
    r = cli("backgrounds", "dedupe", "bg", "--json")
    plan = json.loads(r.stdout)
    assert [(g["keep"], [d["id"] for d in g["duplicates"]]) for g in plan["groups"]] == [("pebbles", ["pebbles_q40"])]
    assert plan["unconfirmed"] == 2
    hashes_only = json.loads(cli("backgrounds", "dedupe", "bg", "--min-correlation", "0", "--json").stdout)
    assert hashes_only["duplicates"] == 2


# ---------------------------------------------------------------------------------------------
# textures
# ---------------------------------------------------------------------------------------------


def tileable(seed: int, n: int = 64) -> np.ndarray:
    """A periodic pattern: it tiles without seams."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n] * (2 * np.pi / n)
    img = np.zeros((n, n, 3))
    for c in range(3):
        a, b = rng.integers(1, 4, 2)
        img[..., c] = 127 + 100 * np.sin(a * xx + rng.uniform(0, 6)) * np.cos(b * yy + rng.uniform(0, 6))
    return img.astype(np.uint8)


def test_render_texture_tiles_periodically_and_upscales():
    tex = tileable(1)
    s = TextureSettings(width=320, height=240, mode="tile", scale=(1.5, 1.5))
    img, how = render_texture(tex, s, np.random.default_rng(0))
    assert img.shape == (240, 320, 3) and how["method"] == "tile" and how["scale"] == 1.5
    period = 96  # 64 px x 1.5
    assert np.array_equal(img[:, :-period], img[:, period:]) and np.array_equal(img[:-period], img[period:])
    img, how = render_texture(tex, TextureSettings(width=320, height=240, mode="upscale"), np.random.default_rng(0))
    assert img.shape == (240, 320, 3) and how["method"] == "upscale" and how["scale"] == 5.0
    big = picture(3, 800, 600)
    img, how = render_texture(big, TextureSettings(width=320, height=240), np.random.default_rng(0))
    assert img.shape == (240, 320, 3) and how["method"] == "crop"


def test_import_textures_filters_records_licences_and_resumes(cli):
    src = Path("pack/textures")
    save(src / "tex_wood/wood01.png", tileable(1))
    save(src / "tex_wood/wood02.jpg", tileable(2), quality=95)
    save(src / "tex_wood/wood01_nm.png", tileable(3))  # excluded by name
    yy, xx = np.mgrid[0:64, 0:64] * (2 * np.pi / 16)
    normal = np.dstack([128 + 50 * np.sin(xx), 128 + 50 * np.cos(yy), 240 + 10 * np.sin(xx + yy)]).astype(np.uint8)
    save(src / "tex_misc/bumps.png", normal)  # a normal map not named like one
    save(src / "tex_misc/flat.png", np.full((64, 64, 3), 90, np.uint8))
    decal = np.dstack([tileable(4), np.zeros((64, 64), np.uint8)])
    decal[20:40, 20:40, 3] = 255
    save(src / "tex_misc/decal.png", decal)
    save(src / "tex_misc/icon.png", tileable(5, 16))  # too small to be a surface
    Path("copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: Pack\n\n"
        "Files: *\nCopyright: 2002-2014, The Team\nLicense: GPL-2+\n\n"
        "Files:\n base/textures/tex_wood/wood02.jpg\n base/textures/tex_misc/*.png\n"
        "Copyright:\n Jane Doe\nLicense: CC-BY-SA-3.0\n\nLicense: GPL-2+\n This program is free software.\n")
    args = ["backgrounds", "import-textures", "pack/textures", "--out", "bgt", "--size", "320x240",
            "--copyright", "copyright", "--copyright-prefix", "base/textures/", "--exclude", "*_nm.*",
            "--source-url", "https://packages.debian.org/pack", "--json"]
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["counts"] == {"made:tile": 2, "skipped:excluded": 1, "skipped:flat": 1, "skipped:normal-map": 1,
                           "skipped:too-small": 1, "skipped:transparent": 1}
    assert s["licences"] == {"GPL-2+": 1, "by-sa": 1}
    recs = {r["texture"]["source_file"]: r for r in BackgroundIndex("bgt").records.values()}
    wood2 = recs["tex_wood/wood02.jpg"]
    assert wood2["licence"] == "by-sa" and wood2["licence_version"] == "3.0" and wood2["author"] == "Jane Doe"
    assert recs["tex_wood/wood01.png"]["licence"] == "GPL-2+"
    assert wood2["texture"]["method"] == "tile" and 1.0 <= wood2["texture"]["scale"] <= 2.2
    assert wood2["width"] == 320 and wood2["height"] == 240 and len(wood2["phash"]) == 16
    shas = {k: r["sha256"] for k, r in recs.items()}

    # Rerun: nothing new. Fresh run with the same seed: the same bytes (deterministic).
    again = json.loads(cli(*args).stdout)["counts"]
    assert again["seen-before"] == 2 and "made:tile" not in again
    args[4] = "bgt2"
    cli(*args)
    assert {r["texture"]["source_file"]: r["sha256"] for r in BackgroundIndex("bgt2").records.values()} == shas
    # upscale mode records its method; the folder feeds the folder provider
    r = cli("backgrounds", "import-textures", "pack/textures/tex_wood", "--out", "bgu", "--size", "320x240",
            "--mode", "upscale", "--licence", "MIT", "--json")
    assert {rec["texture"]["method"] for rec in BackgroundIndex("bgu").records.values()} == {"upscale"}
    refs = plugins.get("background", "folder").list_backgrounds(options_mod.build(plugins.get("background", "folder"), {"root": "bgu"}))
    assert len(refs) == 3 and refs[0].meta["licence"] == "MIT"
    # everything but CC0/PD needs a credit line
    assert write_credits("bgt")["credited"] == 2


def test_import_textures_bad_input_is_one_line(cli):
    r = cli("backgrounds", "import-textures", "nowhere", "--out", "x")
    assert r.exit_code == 2 and "nowhere: texture folder not found" in r.stderr
    Path("t").mkdir()
    r = cli("backgrounds", "import-textures", "t", "--size", "big")
    assert r.exit_code == 2 and "WIDTHxHEIGHT" in r.stderr


@pytest.mark.parametrize("text,expected", [
    ("CC BY-SA 4.0", ("by-sa", "4.0")), ("cc-by-sa-4.0", ("by-sa", "4.0")), ("by", ("by", "")),
    ("CC0", ("cc0", "1.0")), ("Public domain", ("pdm", "")), ("pd", ("pdm", "")), ("pdm", ("pdm", "")),
    ("CC-BY-3.0", ("by", "3.0")), ("CC BY-NC 2.0", ("by-nc", "2.0")), ("GPL-2+", ("GPL-2+", "")),
    (None, ("unknown", "")),
])
def test_licence_codes(text, expected):
    assert licence_code(text) == expected
