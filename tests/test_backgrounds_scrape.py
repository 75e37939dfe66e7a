"""Scraping against fake Openverse / Wikimedia Commons / image servers on 127.0.0.1 (the
`http_server` fixture).

The fakes answer in each API's real reply format (Openverse: results/page_count/page;
Commons: generator=search with continue/gsroffset, imageinfo + extmetadata, maxlag errors)
and misbehave the way real servers do: 429 with Retry-After, 5xx, HTML error pages served as
images, truncated JPEGs, 404s.
"""

from __future__ import annotations

import io
import json
import math
import urllib.parse
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from local_server import LocalServer
from PIL import Image

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.backgrounds.folder import BackgroundIndex, read_rejected
from docsynth.backgrounds.scrape import ScrapeSettings, scrape
from docsynth.http import FetchError, PoliteClient
from docsynth.progress import Progress

LICENCES = ["by", "by-sa", "cc0", "pdm", "by", "by-nc"]  # one in six is not reusable (by-nc)


def smooth_image(seed: int, w: int = 192, h: int = 128) -> np.ndarray:
    """A distinct RGB picture: random colour grid, upsampled smoothly."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 256, size=(5, 7, 3)).astype(np.float32)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kw)
    return buf.getvalue()


class Catalogue:
    """The fake Openverse and Commons APIs and their images, served by the `http_server` fixture
    (tests/local_server.py). ``faults`` are keyed by path plus the page (Openverse) or offset
    (Commons) they answer."""

    def __init__(self, server: LocalServer):
        self.server = server
        self.base = server.base
        self.openverse: dict[str, list[dict]] = {}  # query -> results
        self.commons: dict[str, list[dict]] = {}  # query -> pages
        self.faults = server.faults
        self.log = server.log  # (path, headers) of every request
        self.images = ImageFiles(server.files)
        server.fault_key = lambda path, query: path + ("?page=" + query["page"] if "page" in query else "") + (
            "?gsroffset=" + query.get("gsroffset", "0") if path.endswith("api.php") else "")
        server.routes["/v1/images/"] = lambda q: json_reply(self.openverse_page(q))
        server.routes["/w/api.php"] = lambda q: json_reply(self.commons_page(q))

    def requests_to(self, prefix: str) -> int:
        return self.server.requests_to(prefix)

    def openverse_page(self, q: dict) -> dict:
        results = self.openverse.get(q.get("q", ""), [])
        size, page = int(q.get("page_size", 20)), int(q.get("page", 1))
        count = min(20, math.ceil(len(results) / size))
        chunk = results[(page - 1) * size: page * size]
        return {"result_count": len(results), "page_count": count, "page_size": size, "page": page,
                "results": chunk}

    def commons_page(self, q: dict) -> dict:
        query = q["gsrsearch"].replace(" filetype:bitmap", "")
        pages = self.commons.get(query, [])
        offset, limit = int(q.get("gsroffset", 0)), int(q["gsrlimit"])
        chunk = [dict(p, index=offset + i + 1) for i, p in enumerate(pages[offset:offset + limit])]
        chunk.reverse()  # the API's list has no set order; `index` is the rank
        reply = {"batchcomplete": True, "query": {"pages": chunk}}
        if offset + limit < len(pages):
            reply["continue"] = {"gsroffset": offset + limit, "continue": "gsroffset||"}
        return reply

    def add_image(self, name: str, kind: str, seed: int, size=(192, 128)) -> str:
        rgb = smooth_image(seed, *size)
        if kind == "jpeg":
            self.images[name] = ("image/jpeg", encode(rgb, quality=90))
        elif kind == "png":
            self.images[name] = ("image/png", encode(rgb, "PNG"))
        elif kind == "html":  # an error page with a 200 status and an honest content type
            self.images[name] = ("text/html; charset=utf-8", b"<!DOCTYPE html><html><body>Oops</body></html>")
        elif kind == "html-as-jpeg":  # an error page claiming to be a JPEG
            self.images[name] = ("image/jpeg", b"<html><head><title>403</title></head></html>")
        elif kind == "truncated":
            data = encode(rgb, quality=90)
            self.images[name] = ("image/jpeg", data[: len(data) // 2])
        elif kind == "tiny":
            self.images[name] = ("image/jpeg", encode(smooth_image(seed, 40, 30)))
        # kind "missing": not served (404)
        return f"{self.base}/img/{name}"


class ImageFiles(dict):
    """``images[name] = (content type, body)`` serves it at /img/<name>."""

    def __init__(self, files: dict):
        super().__init__()
        self.files = files

    def __setitem__(self, name: str, value: tuple[str, bytes]) -> None:
        super().__setitem__(name, value)
        self.files[f"/img/{name}"] = value


def json_reply(data: dict) -> tuple[int, dict, bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(data).encode()


def kind_for(i: int) -> str:
    """Mostly good images, with every kind of bad download sprinkled in."""
    return {2: "html", 3: "truncated", 4: "html-as-jpeg", 6: "missing", 7: "tiny", 8: "png"}.get(i % 29, "jpeg")


def openverse_catalogue(server: Catalogue, query: str, n: int, seed0: int) -> None:
    results = []
    for i in range(n):
        name = f"ov-{seed0 + i}.jpg"
        url = server.add_image(name, kind_for(i), seed0 + i)
        lic = LICENCES[i % len(LICENCES)]
        results.append({
            "id": f"0000-{seed0 + i:08d}", "title": f"{query} {i}", "url": url,
            "foreign_landing_url": f"https://www.flickr.com/photos/x/{seed0 + i}", "creator": f"author{i % 5}",
            "creator_url": f"https://www.flickr.com/photos/author{i % 5}", "license": lic,
            "license_version": "" if lic in ("cc0", "pdm") else "2.0",
            "license_url": f"https://creativecommons.org/licenses/{lic}/2.0/", "provider": "flickr",
            "source": "flickr", "filesize": None, "filetype": "jpg",
            # one in ten reports a portrait size: filtered before any download
            "width": 128 if i % 10 == 9 else 192, "height": 192 if i % 10 == 9 else 128,
            "thumbnail": f"{server.base}/v1/images/x/thumb/", "attribution": f"\"{query} {i}\" by author{i % 5}",
        })
    server.openverse[query] = results


@pytest.fixture
def server(http_server):
    return Catalogue(http_server)


def settings(**kw) -> ScrapeSettings:
    return ScrapeSettings(**{"min_width": 100, "min_height": 64, "max_side": 0, "flush_every": 5, **kw})


def fast_client(**kw) -> PoliteClient:
    return PoliteClient(contact="tests@example.org", interval=0, backoff=0.001, max_wait=0.01, **kw)


# ---------------------------------------------------------------------------------------------


def test_client_honours_retry_after_and_backs_off_on_5xx(server):
    server.add_image("a.jpg", "jpeg", 1)
    server.faults["/img/a.jpg"] = [(429, {"Retry-After": "3", "Content-Type": "application/json"},
                                    b'{"detail": "Request was throttled. Expected available in 3 seconds."}'),
                                   (503, {}, b"busy"), (502, {}, b"bad gateway")]
    waits = []
    client = PoliteClient(contact="me@example.org", interval=0, backoff=0.5, max_wait=60, sleep=waits.append)
    reply = client.get(f"{server.base}/img/a.jpg")
    assert reply.status == 200 and reply.body[:2] == b"\xff\xd8"
    assert waits[0] == 3.0  # Retry-After honoured exactly
    assert 0.5 <= waits[1] <= 1.0 and 1.0 <= waits[2] <= 2.0  # exponential backoff (2nd, 3rd try) with jitter
    ua = server.log[-1][1]["User-Agent"]
    assert ua.startswith("docsynth/") and "me@example.org" in ua

    # Retries are bounded; a permanent error is not retried at all.
    server.faults["/img/a.jpg"] = [(500, {}, b"")] * 10
    client = PoliteClient(interval=0, retries=2, backoff=0.001, max_wait=0.01)
    with pytest.raises(FetchError) as exc:
        client.get(f"{server.base}/img/a.jpg")
    assert exc.value.status == 500 and not exc.value.permanent and len(client.waits) == 2
    before = len(server.log)
    with pytest.raises(FetchError) as exc:
        client.get(f"{server.base}/img/nothing.jpg")
    assert exc.value.status == 404 and exc.value.permanent and len(server.log) == before + 1


def test_client_rate_limit_spaces_requests(server):
    server.add_image("a.jpg", "jpeg", 1)
    slept = []
    client = PoliteClient(interval=0.2, sleep=slept.append)
    for _ in range(3):
        client.get(f"{server.base}/img/a.jpg")
    assert len(slept) == 2 and all(0.1 < s <= 0.2 for s in slept)


def test_openverse_scrape_collects_filters_and_records(server):
    openverse_catalogue(server, "wooden table", 60, 1000)
    openverse_catalogue(server, "marble", 60, 2000)
    provider = plugins.get("background", "openverse")
    server.faults["/v1/images/?page=2"] = [(429, {"Retry-After": "1"}, b'{"detail": "throttled"}')]
    client = fast_client()
    options = {"api_url": f"{server.base}/v1/", "licences": ["cc0", "pdm", "by", "by-sa"], "page_size": 20}
    summary = scrape(provider, ["wooden table", "marble"], "bg", limit=25, settings=settings(),
                     client=client, options=options)
    assert summary["per_query"] == {"wooden table": 25, "marble": 25}
    assert summary["added"] == 50 and client.waits  # the 429 was retried
    first = server.log[0][0]
    assert "license=cc0%2Cpdm%2Cby%2Cby-sa" in first and "page_size=20" in first

    index = BackgroundIndex("bg")
    assert len(index) == 50
    for rec in index.records.values():
        for key in ("id", "provider", "query", "url", "author", "licence", "width", "height", "sha256", "phash"):
            assert rec.get(key) not in (None, ""), (key, rec)
        assert rec["licence"] in ("cc0", "pdm", "by", "by-sa")
        assert rec["url"].startswith("https://www.flickr.com/photos/")
        path = Path("bg") / rec["file"]
        assert path.is_file() and path.suffix == ".jpg"
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (rec["width"], rec["height"])
    rejected = summary["rejected"]
    # every kind of bad download was met and counted, not crashed on
    for reason in ("html", "truncated", "http-404", "too-small", "licence", "aspect"):
        assert rejected.get(reason, 0) >= 1, (reason, rejected)
    assert set(r["reason"] for r in read_rejected(Path("bg")).values()) >= {"html", "truncated", "http-404"}
    # the PNG download became a JPEG like the others
    assert any(r["image_url"].endswith("ov-1008.jpg") for r in index.records.values())


@pytest.mark.slow
def test_scrape_resumes_after_interruption_without_refetching(server):
    """A few hundred images over three queries, interrupted once, then finished."""
    queries = ["carpet", "bedsheet", "kitchen table"]
    for q, seed0 in zip(queries, (3000, 4000, 6000), strict=True):
        openverse_catalogue(server, q, 130, seed0)
    provider = plugins.get("background", "openverse")
    options = {"api_url": f"{server.base}/v1/", "licences": ["any"]}

    class StopAfter100(Progress):
        done = 0

        def advance(self, n=1):
            self.done += n
            if self.done == 100:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scrape(provider, queries, "bg", limit=70, settings=settings(), client=fast_client(),
               options=options, progress=StopAfter100())
    index = BackgroundIndex("bg")
    assert len(index) == 100  # records were saved on the way out
    first_run = Counter(p for p, _ in server.log if p.startswith("/img/"))

    summary = scrape(provider, queries, "bg", limit=70, settings=settings(), client=fast_client(),
                     options=options)
    assert summary["added"] == 110 and summary["total"] == 210
    assert summary["per_query"] == {q: 70 for q in queries}
    second_run = Counter(p for p, _ in server.log if p.startswith("/img/")) - first_run
    refetched = [p for p in second_run if p in first_run]
    assert refetched == []  # neither kept nor rejected images were downloaded again
    assert summary["rejected"]["seen-before"] >= 30
    assert len(list(Path("bg").glob("*.jpg"))) == 210 and not list(Path("bg").glob(".*.tmp"))

    # A third run has nothing left to do and sends no request at all.
    before = len(server.log)
    summary = scrape(provider, queries, "bg", limit=70, settings=settings(), client=fast_client(),
                     options=options)
    assert summary["added"] == 0 and len(server.log) == before

    # Size rejections depend on the settings: a run that accepts small images retries them.
    small = [p for p in first_run if p.startswith("/img/ov-") and kind_for(int(p[8:-4]) % 1000) == "tiny"]
    assert small and all(rec["reason"] == "too-small" for rec in read_rejected(Path("bg")).values()
                         if rec["image_url"].endswith(tuple(small)))
    summary = scrape(provider, queries, "bg", limit=200, settings=settings(min_width=32, min_height=24),
                     client=fast_client(), options=options)
    refetched = {p for p, _ in server.log[before:] if p.startswith("/img/")}
    assert set(small) <= refetched and summary["added"] >= len(small)


def commons_catalogue(server: Catalogue, query: str, n: int, seed0: int) -> None:
    pages = []
    for i in range(n):
        name = f"c-{seed0 + i}.jpg"
        url = server.add_image(name, kind_for(i), seed0 + i, size=(320, 200))
        server.add_image(f"c-{seed0 + i}-thumb.jpg", kind_for(i), seed0 + i, size=(160, 100))
        lic = [("cc-by-sa-4.0", "CC BY-SA 4.0"), ("cc-by-4.0", "CC BY 4.0"), ("pd", "Public domain"),
               ("cc0", "CC0"), ("cc-by-nc-2.0", "CC BY-NC 2.0")][i % 5]
        pages.append({"pageid": seed0 + i, "ns": 6, "title": f"File:{query} {i}.jpg", "imageinfo": [{
            "size": 1000, "width": 320, "height": 200, "mime": "image/svg+xml" if i % 31 == 30 else "image/jpeg",
            "url": url, "descriptionurl": f"https://commons.wikimedia.org/wiki/File:{query}_{i}.jpg",
            "thumburl": f"{server.base}/img/c-{seed0 + i}-thumb.jpg", "thumbwidth": 160, "thumbheight": 100,
            "extmetadata": {
                "Artist": {"value": f"<a href=\"//commons.wikimedia.org/wiki/User:U{i}\">User &amp; {i}</a>",
                           "source": "commons-desc-page"},
                "License": {"value": lic[0]}, "LicenseShortName": {"value": lic[1]},
                "AttributionRequired": {"value": "false" if lic[0] in ("pd", "cc0") else "true"}}}]})
    server.commons[query] = pages


def test_commons_scrape_follows_continue_and_maxlag(server):
    commons_catalogue(server, "parquet floor", 70, 5000)
    server.faults["/w/api.php?gsroffset=0"] = [
        (200, {"Retry-After": "5", "Content-Type": "application/json"},
         json.dumps({"error": {"code": "maxlag", "info": "Waiting for db: 7 seconds lagged"}}).encode())]
    server.faults["/w/api.php?gsroffset=20"] = [(503, {}, b"Service Unavailable")]
    provider = plugins.get("background", "wikimedia-commons")
    client = fast_client()
    summary = scrape(provider, ["parquet floor"], "bg", limit=30,
                     settings=settings(licences=("cc0", "pdm", "by", "by-sa")), client=client,
                     options={"api_url": f"{server.base}/w/api.php", "download_width": 160})
    assert summary["added"] == 30 and len(client.waits) == 2
    api_calls = [p for p, _ in server.log if p.startswith("/w/api.php")]
    offsets = [dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(p).query)).get("gsroffset") for p in api_calls]
    assert offsets[:2] == [None, None] and "20" in offsets and "40" in offsets  # continue keys sent back
    assert "continue=gsroffset%7C%7C" in api_calls[-1] and "maxlag=5" in api_calls[0]
    index = BackgroundIndex("bg")
    recs = sorted(index.records.values(), key=lambda r: int(r["id"].split("-")[-1]))
    assert recs[0]["id"] == "wikimedia-commons-5000"  # search rank order, not reply order
    by_lic = Counter(r["licence"] for r in recs)
    assert set(by_lic) == {"by-sa", "by", "pdm", "cc0"}
    assert all(r["image_url"].endswith("-thumb.jpg") and r["width"] == 160 for r in recs)
    r0 = recs[0]
    assert r0["author"] == "User & 0" and r0["author_url"] == "https://commons.wikimedia.org/wiki/User:U0"
    assert r0["licence_version"] == "4.0" and r0["url"].startswith("https://commons.wikimedia.org/wiki/File:")


def test_url_list_csv_and_licence_filter(server, tmp_path):
    rows = ["url,licence,author,page,title"]
    for i in range(6):
        url = server.add_image(f"u{i}.png", "png" if i % 2 else "jpeg", 7000 + i)
        rows.append(f"{url},{'CC BY 4.0' if i < 4 else ''},Ann {i},https://example.org/p{i},photo {i}")
    Path("urls.csv").write_text("\n".join(rows) + "\n")
    provider = plugins.get("background", "url-list")
    summary = scrape(provider, ["urls.csv"], "bg", limit=10, settings=settings(), client=fast_client(),
                     options={})
    assert summary["added"] == 4 and summary["rejected"]["licence"] == 2  # unknown licence rejected
    recs = list(BackgroundIndex("bg").records.values())
    assert {r["licence"] for r in recs} == {"by"} and recs[0]["author"] == "Ann 0"
    assert recs[0]["url"] == "https://example.org/p0" and recs[0]["query"] == "urls.csv"
    # plain text list, licence given as an option, `any` accepted
    Path("urls.txt").write_text("# my photos\n" + "\n".join(f"{server.base}/img/u{i}.png" for i in range(6)) + "\n")
    summary = scrape(provider, ["urls.txt"], "bg2", limit=10, settings=settings(licences=("any",)),
                     client=fast_client(), options={"licence": "cc0"})
    assert summary["added"] == 6
    refs = provider.list_backgrounds(options_mod.build(provider, {"root": "bg2"}))
    assert len(refs) == 6 and refs[0].meta["licence"] == "cc0"
    assert provider.load_background(refs[0]).shape[2] == 3


def test_cli_scrape_normalize_dedupe_credits_generate(server, cli):
    """The whole chain through the CLI: the scraped folder feeds `generate --backgrounds`."""
    openverse_catalogue(server, "desk", 60, 9000)
    # Plant near-duplicates in the catalogue: the same picture re-encoded and resized.
    for i, src in enumerate((9000, 9001, 9010)):
        rgb = smooth_image(src, 192, 128)
        server.images[f"dup{i}.jpg"] = ("image/jpeg", encode(cv2.resize(rgb, (176, 118)), quality=60))
        server.openverse["desk"].insert(5 + i, dict(server.openverse["desk"][0], id=f"dup-{i}",
                                                    url=f"{server.base}/img/dup{i}.jpg", license="cc0"))
    Path("docsynth.yaml").write_text(yaml.safe_dump({"backgrounds": {
        "contact": "tests@example.org", "min_width": 100, "min_height": 64, "rate_limit": 0.0,
        "backoff": 0.001, "max_wait": 0.01, "max_side": 0,
        "options": {"openverse": {"api_url": f"{server.base}/v1/"}}}}))
    r = cli("backgrounds", "scrape", "--provider", "openverse", "--query", "desk", "--limit", "30",
            "--out", "bg", "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["added"] == 30

    r = cli("backgrounds", "normalize", "bg", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["kept"] == 30  # scrape already wrote upright RGB JPEGs

    r = cli("backgrounds", "dedupe", "bg", "--threshold", "6")
    assert r.exit_code == 0 and "3 duplicates would be moved" in r.stdout
    assert len(list(Path("bg").glob("*.jpg"))) == 30  # dry run moved nothing
    r = cli("backgrounds", "dedupe", "bg", "--apply", "--json")
    moved = json.loads(r.stdout)
    assert moved["duplicates"] == 3 and {g["keep"] for g in moved["groups"]} == {
        "openverse-0000-00009000", "openverse-0000-00009001", "openverse-0000-00009010"}
    assert len(list(Path("bg/duplicates").glob("*.jpg"))) == 3

    r = cli("backgrounds", "credits", "bg", "--json")
    credits = json.loads(r.stdout)
    text = Path("bg/CREDITS.md").read_text()
    assert credits["images"] == 27 and 0 < credits["credited"] < 27
    assert "licensed under [CC BY 2.0](https://creativecommons.org/licenses/by/2.0/)" in text
    assert "dup-" not in text and "CC0" not in text
    Path("bg/CREDITS.md").write_text("my own notes\n")
    assert cli("backgrounds", "credits", "bg").exit_code != 0  # not ours: needs --force

    r = cli("generate", "--backgrounds", "bg", "--count", "3", "--out", "synth", "--compositor", "homography", "--json")
    assert r.exit_code == 0, r.stderr
    manifest = [json.loads(line) for line in Path("synth/manifest.jsonl").read_text().splitlines()]
    kept_ids = {rec["id"] for rec in BackgroundIndex("bg").records.values() if not rec["file"].startswith("duplicates/")}
    assert len(manifest) == 3 and all(m["background"] in kept_ids for m in manifest)


def test_cli_scrape_errors_are_one_line(cli):
    r = cli("backgrounds", "scrape", "--provider", "procedural", "--query", "x")
    assert r.exit_code == 2 and "cannot scrape" in r.stderr and "Traceback" not in r.stderr
    r = cli("backgrounds", "scrape", "--provider", "url-list", "--query", "nope.csv", "--out", "bg")
    assert r.exit_code == 2 and "nope.csv: URL list not found" in r.stderr
    r = cli("backgrounds", "list", "--json")
    names = {p["name"]: p["scrape"] for p in json.loads(r.stdout)}
    assert names["openverse"] and names["wikimedia-commons"] and names["url-list"] and not names["folder"]


def test_failing_api_ends_with_one_line_and_keeps_progress(server, cli):
    openverse_catalogue(server, "floor", 60, 8000)
    server.faults["/v1/images/?page=2"] = [(503, {}, b"down")] * 20
    Path("docsynth.yaml").write_text(yaml.safe_dump({"backgrounds": {
        "min_width": 100, "min_height": 64, "rate_limit": 0.0, "backoff": 0.001, "max_wait": 0.01,
        "retries": 2, "options": {"openverse": {"api_url": f"{server.base}/v1/"}}}}))
    r = cli("backgrounds", "scrape", "-p", "openverse", "-q", "floor", "-n", "40", "-o", "bg")
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    assert "openverse: search for 'floor' failed" in r.stderr and "HTTP 503" in r.stderr
    assert len(BackgroundIndex("bg")) > 5  # page 1's images were kept for the next run
