"""docsynth.sources.download: resumable, verified downloads and archive extraction that cannot escape."""

from __future__ import annotations

import hashlib
import os

import pytest
from sources_fixtures import make_tar, make_zip

from docsynth.errors import DocsynthError
from docsynth.progress import Progress
from docsynth.sources.download import Download, download, extract

DATA = bytes(range(256)) * 800  # 200 KiB, several read chunks


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _no_sleep(_s):
    pass


def test_dropped_connection_resumes_with_range(tmp_path, http_server):
    srv = http_server.serve({"/f.bin": DATA})
    srv.cut_after["/f.bin"] = 70_000
    path = download(Download(srv.url("/f.bin"), "f.bin", sha256=_sha(DATA), size=len(DATA)), tmp_path,
                    sleep=_no_sleep)
    assert path.read_bytes() == DATA
    assert srv.requests == [("/f.bin", None), ("/f.bin", "bytes=70000-")]
    assert not (tmp_path / "f.bin.part").exists()


def test_interrupted_run_resumes_on_rerun(tmp_path, http_server):
    item = None
    srv = http_server.serve({"/f.bin": DATA})
    item = Download(srv.url("/f.bin"), "f.bin", sha256=_sha(DATA))
    srv.cut_after["/f.bin"] = 50_000
    with pytest.raises(DocsynthError, match="rerun to resume from 50000 bytes"):
        download(item, tmp_path, retries=0)
    assert (tmp_path / "f.bin.part").stat().st_size == 50_000
    assert not (tmp_path / "f.bin").exists()
    path = download(item, tmp_path)  # a new run picks up the .part
    assert path.read_bytes() == DATA
    assert srv.requests[-1] == ("/f.bin", "bytes=50000-")
    n = len(srv.requests)
    download(item, tmp_path)  # verified file already there: no request at all
    assert len(srv.requests) == n


def test_wrong_checksum_is_rejected_and_deleted(tmp_path, http_server):
    srv = http_server.serve({"/f.bin": DATA})
    item = Download(srv.url("/f.bin"), "f.bin", sha256=_sha(b"something else"))
    with pytest.raises(DocsynthError, match="sha256 mismatch.*deleted"):
        download(item, tmp_path)
    assert os.listdir(tmp_path) == []


def test_wrong_md5_and_size_are_rejected(tmp_path, http_server):
    srv = http_server.serve({"/f.bin": DATA})
    with pytest.raises(DocsynthError, match="md5 mismatch"):
        download(Download(srv.url("/f.bin"), "f.bin", md5="0" * 32), tmp_path)
    with pytest.raises(DocsynthError, match="size"):
        download(Download(srv.url("/f.bin"), "g.bin", size=len(DATA) + 5), tmp_path, sleep=_no_sleep)
    ok = download(Download(srv.url("/f.bin"), "h.bin", md5=hashlib.md5(DATA).hexdigest()), tmp_path)
    assert ok.read_bytes() == DATA
    assert sorted(os.listdir(tmp_path)) == ["h.bin"]


def test_corrupt_final_file_is_replaced(tmp_path, http_server):
    (tmp_path / "f.bin").write_bytes(b"garbage")
    srv = http_server.serve({"/f.bin": DATA})
    path = download(Download(srv.url("/f.bin"), "f.bin", sha256=_sha(DATA)), tmp_path)
    assert path.read_bytes() == DATA


def test_server_errors_are_retried_with_backoff(tmp_path, http_server):
    waits = []
    srv = http_server.serve({"/f.bin": DATA})
    srv.faults["/f.bin"] = [(503, {}, b"")]
    path = download(Download(srv.url("/f.bin"), "f.bin", sha256=_sha(DATA)), tmp_path,
                    backoff=0.5, sleep=waits.append)
    assert path.read_bytes() == DATA
    assert waits == [0.5]


def test_server_that_ignores_range_restarts_cleanly(tmp_path, http_server):
    (tmp_path / "f.bin.part").write_bytes(DATA[:1000])
    srv = http_server.serve({"/f.bin": DATA})
    srv.ignore_range = True
    path = download(Download(srv.url("/f.bin"), "f.bin", sha256=_sha(DATA)), tmp_path)
    assert path.read_bytes() == DATA


def test_missing_and_forbidden_files_fail_at_once(tmp_path, http_server):
    srv = http_server.serve({})
    with pytest.raises(DocsynthError, match="HTTP 404"):
        download(Download(srv.url("/nope"), "nope"), tmp_path, sleep=pytest.fail)
    srv.files["/gated"] = DATA
    srv.faults["/gated"] = [(403, {}, b"")]
    with pytest.raises(DocsynthError, match="sources import"):
        download(Download(srv.url("/gated"), "gated"), tmp_path, sleep=pytest.fail)


class Recorder(Progress):
    def __init__(self):
        self.starts, self.done = [], 0

    def start(self, total, done=0):
        self.starts.append((total, done))
        self.done = done

    def advance(self, n=1):
        self.done += n


def test_progress_reports_bytes(tmp_path, http_server):
    seen = Recorder()
    srv = http_server.serve({"/f.bin": DATA})
    download(Download(srv.url("/f.bin"), "f.bin"), tmp_path, progress=seen)
    assert seen.starts == [(len(DATA), 0)] and seen.done == len(DATA)


def test_progress_of_a_resumed_download_starts_where_it_stopped(tmp_path, http_server):
    seen = Recorder()
    (tmp_path / "f.bin.part").write_bytes(DATA[:1000])
    srv = http_server.serve({"/f.bin": DATA})
    download(Download(srv.url("/f.bin"), "f.bin"), tmp_path, progress=seen)
    assert seen.starts == [(len(DATA), 1000)] and seen.done == len(DATA)


def test_progress_counts_extracted_members(tmp_path):
    seen = Recorder()
    extract(make_zip(tmp_path / "x.zip", {"a": b"a", "b/c": b"c"}), tmp_path / "out", progress=seen)
    assert seen.starts == [(2, 0)] and seen.done == 2


# ---------------------------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------------------------


def test_extract_zip_and_tar(tmp_path):
    files = {"top/a.txt": b"a", "top/sub/b.txt": b"b"}
    for archive in (make_zip(tmp_path / "x.zip", files), make_tar(tmp_path / "x.tar.gz", files)):
        target = extract(archive, tmp_path / ("out-" + archive.name))
        assert (target / "top/sub/b.txt").read_bytes() == b"b"
        with pytest.raises(DocsynthError, match="already exists"):
            extract(archive, target)


@pytest.mark.parametrize("name", ["../evil.txt", "ok/../../evil.txt", "/tmp/evil-abs.txt"])
def test_path_traversal_is_refused(tmp_path, name):
    work = tmp_path / "work"
    for archive in (make_zip(work / "bad.zip", {"fine.txt": b"x", name: b"evil"}),
                    make_tar(work / "bad.tar", {"fine.txt": b"x", name: b"evil"})):
        target = work / "out"
        with pytest.raises(DocsynthError, match="refusing to extract"):
            extract(archive, target)
        assert not target.exists()
        assert not (work / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
        assert [p.name for p in work.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_symlinks_pointing_outside_are_refused(tmp_path):
    bad = make_tar(tmp_path / "links.tar", {"d/a.txt": b"a"}, symlinks={"d/passwd": "../../etc/passwd"})
    with pytest.raises(DocsynthError, match="points outside"):
        extract(bad, tmp_path / "out")
    absolute = make_tar(tmp_path / "abs.tar", {"a.txt": b"a"}, symlinks={"link": "/etc/passwd"})
    with pytest.raises(DocsynthError, match="points outside"):
        extract(absolute, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    good = make_tar(tmp_path / "ok.tar", {"d/a.txt": b"a"}, symlinks={"d/alias.txt": "a.txt"})
    target = extract(good, tmp_path / "ok")
    assert (target / "d/alias.txt").read_bytes() == b"a"


def test_damaged_archive_is_reported(tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DocsynthError, match="damaged archive"):
        extract(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
