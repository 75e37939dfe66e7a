"""docsynth.http, the one HTTP client, against the `http_server` fixture: resume with Range,
retries with backoff, the per-host interval, one line on failure. (Search-API retries and
Retry-After: tests/test_backgrounds_scrape.py; checksums and archives: tests/test_download.py.)"""

from __future__ import annotations

import pytest

from docsynth.errors import DocsynthError
from docsynth.http import FetchError, PoliteClient

DATA = bytes(range(256)) * 600


def client(**kw) -> PoliteClient:
    waits: list[float] = []
    return PoliteClient(**{"interval": 0, "backoff": 0.5, "jitter": False, "sleep": waits.append, **kw})


def test_download_resumes_a_dropped_transfer_with_range(http_server, tmp_path):
    http_server.serve({"/f.bin": DATA}).cut_after["/f.bin"] = 10_000
    c = client()
    c.download_to(http_server.url("/f.bin"), tmp_path / "f.part", len(DATA))
    assert (tmp_path / "f.part").read_bytes() == DATA
    assert http_server.requests == [("/f.bin", None), ("/f.bin", "bytes=10000-")]
    assert c.waits == [0.5]  # one backoff before the resuming retry


def test_download_waits_what_the_server_asks_and_backs_off_exponentially(http_server, tmp_path):
    http_server.serve({"/f.bin": DATA})
    http_server.faults["/f.bin"] = [(429, {"Retry-After": "7"}, b""), (503, {}, b""), (502, {}, b"")]
    c = client()
    c.download_to(http_server.url("/f.bin"), tmp_path / "f.part")
    assert (tmp_path / "f.part").read_bytes() == DATA
    assert c.waits == [7.0, 1.0, 2.0]


def test_download_gives_up_after_its_retries_with_one_line(http_server, tmp_path):
    http_server.serve({"/f.bin": DATA})
    http_server.faults["/f.bin"] = [(503, {}, b"")] * 5
    c = client(retries=2)
    with pytest.raises(FetchError) as failed:
        c.download_to(http_server.url("/f.bin"), tmp_path / "f.part")
    assert len(c.waits) == 2 and failed.value.status == 503
    assert str(failed.value) == f"{http_server.url('/f.bin')}: HTTP 503 Service Unavailable"
    with pytest.raises(FetchError) as missing:  # permanent: not retried
        c.download_to(http_server.url("/nothing"), tmp_path / "n.part")
    assert missing.value.permanent and len(c.waits) == 2 and "\n" not in str(missing.value)


def test_download_of_a_complete_part_asks_nothing_more(http_server, tmp_path):
    http_server.serve({"/f.bin": DATA})
    (tmp_path / "f.part").write_bytes(DATA)
    client().download_to(http_server.url("/f.bin"), tmp_path / "f.part")  # the server answers 416
    assert (tmp_path / "f.part").read_bytes() == DATA and http_server.requests == [("/f.bin", f"bytes={len(DATA)}-")]


def test_per_host_interval_spaces_downloads_and_api_calls_alike(http_server, tmp_path):
    http_server.serve({"/a": b"a", "/b": b"b"})
    slept: list[float] = []
    c = PoliteClient(interval=0.3, sleep=slept.append)
    c.download_to(http_server.url("/a"), tmp_path / "a.part")
    c.get(http_server.url("/b"))
    c.download_to(http_server.url("/b"), tmp_path / "b.part")
    assert len(slept) == 2 and all(0.2 < s <= 0.3 for s in slept)
    other = PoliteClient(interval=0.3, sleep=slept.append)  # another client keeps its own count
    other.get(http_server.url("/a"))
    assert len(slept) == 2


def test_unwritable_part_is_not_retried(http_server, tmp_path):
    http_server.serve({"/f.bin": DATA})
    (tmp_path / "f.part").mkdir()  # a folder where the file should go
    c = client()
    with pytest.raises(DocsynthError, match="cannot write"):
        c.download_to(http_server.url("/f.bin"), tmp_path / "f.part")
    assert c.waits == []
