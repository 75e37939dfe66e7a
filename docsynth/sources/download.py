"""Dataset-agnostic downloading and safe archive extraction (standard library only).

``download`` fetches one URL into a folder with docsynth's HTTP client (docsynth.http): the
bytes go to ``<name>.part`` and a rerun (or a retry after a dropped connection) asks the server
for the rest with an HTTP ``Range`` header.
The finished file is checked against its sha256 (or md5) before it gets its final name; a
wrong file is deleted, never kept under the final name.

``extract`` unpacks a zip or tar archive after checking every member: absolute names, ``..``
components, links that point outside the target and device files make it refuse the whole
archive before anything is written. Extraction goes to a temporary folder next to the target
and is renamed into place at the end, so a half-extracted archive never looks finished.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from docsynth.errors import DocsynthError
from docsynth.http import RETRY_STATUS, FetchError, PoliteClient
from docsynth.progress import Progress

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")

_TAR_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}



@dataclass(frozen=True)
class Download:
    """One file a source can fetch. ``sha256``/``md5``/``size`` are checked when given."""

    url: str
    filename: str
    sha256: str | None = None
    size: int | None = None
    md5: str | None = None


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, item: Download) -> str | None:
    """None when the file matches everything ``item`` pins, else what is wrong."""
    if item.size is not None and path.stat().st_size != item.size:
        return f"size {path.stat().st_size} bytes, expected {item.size}"
    if item.sha256 and file_digest(path, "sha256") != item.sha256.lower():
        return "sha256 mismatch"
    if item.md5 and file_digest(path, "md5") != item.md5.lower():
        return "md5 mismatch"
    return None


def download(item: Download, folder: str | Path, *, retries: int = 4, backoff: float = 1.0,
             timeout: float = 60.0, progress: Progress | None = None,
             sleep: Callable[[float], None] = time.sleep, client: PoliteClient | None = None) -> Path:
    """Fetch ``item`` into ``folder`` and return the final path.

    An existing final file that passes the checks is kept (no network). A ``.part`` file from
    an earlier attempt is resumed. Transient errors (connection reset, timeouts, HTTP 5xx,
    a short body) are retried ``retries`` times with exponential backoff, each retry resuming
    (docsynth.http does both; ``client``, when given, replaces the one built from the other
    arguments, e.g. to share its per-host interval between the files of a source).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / item.filename
    part = folder / (item.filename + ".part")
    if final.is_file():
        problem = _verify(final, item)
        if problem is None:
            return final
        final.unlink()  # a wrong file under the final name is worse than none
    if client is None:
        client = PoliteClient(interval=0, retries=retries, backoff=backoff, jitter=False, timeout=timeout,
                              sleep=sleep)
    try:
        client.download_to(item.url, part, item.size, progress)
    except FetchError as exc:
        if exc.permanent or exc.status not in RETRY_STATUS | {0}:
            hint = " (a login-gated file: download it in a browser and use 'docsynth sources import')" \
                if exc.status in (401, 403) else ""
            raise DocsynthError(f"{exc}{hint}") from None
        raise DocsynthError(f"{item.url}: download failed after {client.retries + 1} attempts ({exc.reason}); "
                            f"rerun to resume from {part.stat().st_size if part.exists() else 0} bytes") from None
    problem = _verify(part, item)
    if problem is not None:
        part.unlink()
        raise DocsynthError(f"{item.url}: downloaded file rejected ({problem}); it was deleted. "
                            "Rerun to download it again; if it fails again the server has another file")
    os.replace(part, final)
    return final


# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------


def is_archive(path: str | Path) -> bool:
    name = Path(path).name.lower()
    return name.endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: str | Path) -> str:
    name = Path(path).name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _safe_name(archive: Path, name: str) -> PurePosixPath:
    """The member's path relative to the target, or an error when it would escape it."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or (p.parts and ":" in p.parts[0]):
        raise DocsynthError(f"{archive}: member {name!r} has an absolute path; refusing to extract this archive")
    if ".." in p.parts:
        raise DocsynthError(f"{archive}: member {name!r} points outside the target folder (path traversal); "
                            "refusing to extract this archive")
    return p


def _link_target_inside(member_path: PurePosixPath, target: str) -> bool:
    t = PurePosixPath(target)
    if t.is_absolute():
        return False
    depth = 0
    for part in (member_path.parent / t).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in (".", ""):
            depth += 1
    return True


def _check_tar(archive: Path, tf: tarfile.TarFile) -> list[tarfile.TarInfo]:
    keep = []
    for m in tf.getmembers():
        path = _safe_name(archive, m.name)
        if m.islnk():  # a hard link names another member of the archive
            _safe_name(archive, m.linkname)
        elif m.issym():
            if not _link_target_inside(path, m.linkname):
                raise DocsynthError(f"{archive}: link {m.name!r} -> {m.linkname!r} points outside the target "
                                    "folder; refusing to extract this archive")
        elif not (m.isfile() or m.isdir()):
            continue  # devices, fifos: never needed for image data
        keep.append(m)
    return keep


def _check_zip(archive: Path, zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    keep = []
    for info in zf.infolist():
        _safe_name(archive, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            continue  # zip symlinks are stored as files with the link target as content: skip
        keep.append(info)
    return keep


def extract(archive: str | Path, target: str | Path, *, progress: Progress | None = None) -> Path:
    """Unpack ``archive`` into ``target`` (created; must not exist yet) and return it."""
    archive, target = Path(archive), Path(target)
    if target.exists():
        raise DocsynthError(f"{target}: already exists; remove it to extract {archive.name} again")
    tmp = target.with_name(f".{target.name}.extracting")
    if tmp.exists():
        shutil.rmtree(tmp)  # leftovers of an interrupted extraction
    tmp.mkdir(parents=True)
    try:
        _extract_into(archive, tmp, progress)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _extract_into(archive: Path, dest: Path, progress: Progress | None) -> None:
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                members = _check_zip(archive, zf)
                if progress:  # members of this archive
                    progress.start(len(members))
                for info in members:
                    zf.extract(info, dest)
                    if progress:
                        progress.advance()
        elif name.endswith(ARCHIVE_SUFFIXES):
            with tarfile.open(archive) as tf:
                tar_members = _check_tar(archive, tf)
                if progress:
                    progress.start(len(tar_members))
                for m in tar_members:
                    # the 'data' filter (Python >= 3.11.4) also drops set-uid bits and owners
                    tf.extract(m, dest, set_attrs=False, **_TAR_FILTER)  # type: ignore[arg-type]  # a filter name
                    if progress:
                        progress.advance()
        else:
            raise DocsynthError(f"{archive}: not a zip or tar archive ({', '.join(ARCHIVE_SUFFIXES)})")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise DocsynthError(f"{archive}: damaged archive ({exc}); download it again") from None
    # A symlink could still point outside through a chain of links; check the result.
    root = dest.resolve()
    for path in dest.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise DocsynthError(f"{archive}: link {path.relative_to(dest)} points outside the target folder; "
                                "refusing to extract this archive")
