"""File helpers: atomic writes, image decode/encode, JSONL manifests.

Every file docsynth writes goes to a temporary name in the same folder and is renamed into
place, so an interrupted run never leaves a half-written file under a final name.
"""

from __future__ import annotations

import contextlib
import io as _io
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from PIL import Image

from docsynth.errors import DocsynthError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}

# Every image docsynth reads must lie within these: a 1x1 page makes a mask that cannot match
# its corners, and a small PNG can decode to 20000x20000 (gigabytes of memory). The size is
# read from the file's header before anything is decoded.
MIN_SIDE = 16
MAX_PIXELS = 100_000_000

# OpenCV logs its own decoder complaints on stderr; read_image reports the file instead.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes 0600 files; outputs should get the usual mode (0644 with umask 022).
_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not exc.filename:  # a failed write names no file
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def encode_image(image: np.ndarray, suffix: str, jpeg_quality: int = 95) -> bytes:
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif suffix == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(suffix, image, params)
    if not ok:
        raise DocsynthError(f"could not encode image as {suffix}")
    return buf.tobytes()


# A mask is a few flat regions: each row predicted from the one above, then run-length coded,
# encodes 4x faster than zlib's default search and to a smaller file (same pixels).
MASK_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP,
            cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]


def encode_mask(mask: np.ndarray) -> bytes:
    """A page mask (or any few-valued label image) as PNG bytes."""
    ok, buf = cv2.imencode(".png", mask, MASK_PNG)
    if not ok:
        raise DocsynthError("could not encode a mask as .png")
    return buf.tobytes()


def write_image(path: str | Path, image: np.ndarray, jpeg_quality: int = 95) -> None:
    path = Path(path)
    atomic_write_bytes(path, encode_image(image, path.suffix.lower(), jpeg_quality))


def read_image(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode an image file (EXIF orientation applied by OpenCV). Raises DocsynthError."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DocsynthError(f"{path}: cannot read ({exc.strerror})") from None
    if not data.size:
        raise DocsynthError(f"{path}: empty file, not an image")
    _check_header(path, data)
    image = cv2.imdecode(data, flags)
    if image is None:
        raise DocsynthError(f"{path}: not a readable image")
    _check_size(path, image.shape[1], image.shape[0])
    return image


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"


def _check_header(path: Path, data: np.ndarray) -> None:
    """Refuse, before decoding, an image too large to decode and a truncated PNG (whose
    decoder would print its own complaint)."""
    head = data[:8].tobytes()
    if head == _PNG_SIGNATURE and not data[-12:].tobytes().endswith(_PNG_END):
        raise DocsynthError(f"{path}: truncated PNG (no end marker); replace or remove the file")
    if head[:3] == b"\xff\xd8\xff" and _jpeg_truncated(data.tobytes()):
        raise DocsynthError(f"{path}: truncated JPEG (no end marker after the image data); replace or remove the file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(_io.BytesIO(data)) as probe:  # type: ignore[arg-type]  # an ndarray is a buffer
                width, height = probe.size
    except Image.DecompressionBombError:  # Pillow's own limit, higher than ours
        raise DocsynthError(f"{path}: more pixels than docsynth reads ({MAX_PIXELS // 1_000_000} megapixels); "
                            "scale it down") from None
    except Exception:  # a format Pillow cannot parse: OpenCV decides, and size is checked after
        return
    _check_size(path, width, height)


def _jpeg_truncated(raw: bytes) -> bool:
    """True when a JPEG stops inside its image data (a cut download or copy): no end-of-image
    marker follows the main image's first scan. OpenCV would decode such a file with a grey
    bottom and only a libjpeg complaint on stderr. The header segments are walked by their
    lengths, so a thumbnail in the EXIF block (which has its own end marker) does not count;
    a file whose structure is not understood is left to the decoder."""
    pos, n = 2, len(raw)
    while True:
        while pos < n and raw[pos] == 0xFF and pos + 1 < n and raw[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 1 >= n:
            return True  # ended among the header segments: no image data at all
        if raw[pos] != 0xFF:
            return False  # not the structure we expect; let the decoder decide
        marker = raw[pos + 1]
        if marker == 0xDA:  # start of scan: the image data follows
            return raw.find(b"\xff\xd9", pos) == -1
        if marker == 0xD9:
            return False  # end of image before any scan: the decoder reports it
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if pos + 3 >= n:
            return True
        pos += 2 + ((raw[pos + 2] << 8) | raw[pos + 3])


def _check_size(path: Path, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise DocsynthError(f"{path}: {width}x{height} pixels, more than docsynth reads "
                            f"({MAX_PIXELS // 1_000_000} megapixels); scale it down")
    if min(width, height) < MIN_SIDE:
        raise DocsynthError(f"{path}: {width}x{height} pixels, too small (at least {MIN_SIDE} px a side); "
                            "replace or remove it")


def read_mask(path: str | Path) -> np.ndarray:
    mask = read_image(path, cv2.IMREAD_GRAYSCALE)
    return np.where(mask >= 128, 255, 0).astype(np.uint8)


# Files by which docsynth marks a folder it wrote: a dataset (run.yaml), a scan (scan.json), an
# evaluation (results.json), a stage of `docsynth run` (.stage.json), prepared pages (prepare.yaml).
OUTPUT_RECORDS = ("run.yaml", "scan.json", "results.json", ".stage.json", "prepare.yaml")


def docsynth_outputs_under(folder: str | Path, paths: Iterable[Path] | None = None) -> set[Path]:
    """Subfolders of ``folder`` (not itself) that docsynth wrote: they carry one of its records.
    Their composites, masks, pages and contact sheets are never listed as inputs. ``paths``:
    the folder's files when the caller has walked it already."""
    folder = Path(folder)
    paths = folder.rglob("*") if paths is None else paths
    return {p.parent for p in paths if p.name in OUTPUT_RECORDS and p.parent != folder and p.is_file()}


def list_images(folder: str | Path) -> list[Path]:
    """Every image under ``folder``, except hidden ones and those in docsynth's own outputs."""
    folder = Path(folder)
    every = list(folder.rglob("*"))  # one walk: big photo folders are slow to list
    ours = docsynth_outputs_under(folder, every)
    return sorted(p for p in every if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts)
                  and not (ours and any(parent in ours for parent in p.parents)))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DocsynthError(f"{path}:{n}: invalid JSON ({exc.msg})") from None
    return rows


def dumps_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=False, separators=(",", ":")) + "\n" for r in rows)


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, dumps_jsonl(rows))


def claim_output(out: Path, record: Path, fingerprint: Any, entries: Iterable[str], force: bool,
                 what: str, key: str = "fingerprint") -> bool:
    """Make ``out`` ready for a job whose settings are ``fingerprint``.

    A non-empty folder is only reused when ``record`` (a YAML file with a ``key`` entry,
    written by the job) matches, so a rerun resumes. Otherwise it is refused, or with ``force``
    the job's own ``entries`` are removed (nothing else the user keeps there). Returns True
    when the folder holds the job's earlier output with these settings."""
    if out.exists() and not out.is_dir():
        raise DocsynthError(f"{out}: exists and is not a folder; choose another --out")
    if not (out.is_dir() and any(out.iterdir())):
        return False
    try:
        same = yaml.safe_load(record.read_text()).get(key) == fingerprint
    except (OSError, yaml.YAMLError, AttributeError):
        same = False
    if same:
        return True
    if not force:
        raise DocsynthError(f"{out}: not empty and not {what}; use --force to replace what docsynth wrote "
                            "there, or choose another --out")
    for name in entries:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    return False


def place_file(src: Path, dst: Path) -> None:
    """Hard-link ``src`` at ``dst`` (same file system) or copy it, atomically either way (the
    exporters place dataset images this way)."""
    if not src.is_file():
        raise DocsynthError(f"{src}: image listed in the manifest is missing; regenerate the dataset")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        os.link(src, tmp)
        os.replace(tmp, dst)
    except OSError:
        atomic_write_bytes(dst, src.read_bytes())
