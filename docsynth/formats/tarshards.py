"""WebDataset-style tar shards: write them in `generate`, stream them in training.

With ``generate.shard_format: tar`` each shard of samples becomes one ``shards/NNNNN.tar``
holding, per sample and in index order, ``<id>.<jpg|png>`` (the image), ``<id>.mask.png``
and ``<id>.json`` (its manifest row), plus ``<id>.dewarp.npz`` and ``<id>.text.jsonl`` when
``generate.labels`` asks for them. Members share the ``<id>`` prefix, which is how
WebDataset groups them into samples, so ``webdataset.WebDataset("shards/{00000..00009}.tar")``
reads them as well as :func:`iter_samples` does.

Tar headers are fixed (mtime 0, uid/gid 0, no owner names, mode 0644, ustar format) so a
shard's bytes depend only on its samples, whatever machine or worker count wrote it.

In tar mode a manifest row names its shard in ``"tar"`` and its members in ``"image"`` and
``"mask"``, e.g. ``{"tar": "shards/00003.tar", "image": "0000099.jpg", "mask":
"0000099.mask.png", ...}``.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth.errors import DocsynthError
from docsynth.io import atomic_write_bytes

FORMATS = ("files", "tar")
MASK_SUFFIX = ".mask.png"
LABEL_MEMBERS = ("dewarp.npz", "text.jsonl")  # generate.labels: <id>.dewarp.npz, <id>.text.jsonl


def shard_name(shard: int) -> str:
    return f"shards/{shard:05d}.tar"


def tar_row(row: dict[str, Any], shard: int, image_format: str) -> dict[str, Any]:
    """A manifest row rewritten to point at members of shard ``shard``."""
    sid = row["id"]
    return {**row, "image": f"{sid}.{image_format}", "mask": f"{sid}{MASK_SUFFIX}", "tar": shard_name(shard)}


class ShardWriter:
    """Collects samples of one shard in memory and writes the tar atomically."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        # open across add() calls, closed by write(): the shard is one tar in memory until then
        self._tar = tarfile.open(fileobj=self._buffer, mode="w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115

    def _add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self._tar.addfile(info, io.BytesIO(data))

    def add(self, row: dict[str, Any], image: bytes, mask: bytes, labels: dict[str, bytes] | None = None) -> None:
        """Add one sample; ``row`` must already come from :func:`tar_row`. ``labels``: more
        members by suffix (``{"dewarp.npz": ..., "text.jsonl": ...}``, generate.labels)."""
        self._add(row["image"], image)
        self._add(row["mask"], mask)
        self._add(f"{row['id']}.json", json.dumps(row, separators=(",", ":")).encode("utf-8"))
        for suffix, data in (labels or {}).items():
            self._add(f"{row['id']}.{suffix}", data)

    def write(self, path: str | Path) -> None:
        self._tar.close()
        atomic_write_bytes(path, self._buffer.getvalue())


# -- reading ---------------------------------------------------------------------------------------


def list_shards(path: str | Path) -> list[Path]:
    """The tar shards of a dataset folder (in shard order), or ``[path]`` for a tar file."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DocsynthError(f"{path}: no such tar shard or dataset folder")
    shards = sorted((path / "shards").glob("*.tar")) or sorted(path.glob("*.tar"))
    if not shards:
        raise DocsynthError(f"{path}: no tar shards found; generate with --shard-format tar")
    return shards


def _split_key(name: str) -> tuple[str, str]:
    """WebDataset's rule: the key is the name up to the first dot of its last path part."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext


def _read_groups(path: Path) -> Iterator[tuple[str | None, dict[str, bytes]]]:
    """Yield ``(key, {extension: bytes})`` for consecutive members sharing a key; streams the
    file, so a shard on slow or remote storage is read once, front to back."""
    key: str | None = None
    group: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                k, ext = _split_key(member.name)
                if k != key and group:
                    yield key, group
                    group = {}
                key = k
                fh = tar.extractfile(member)
                group[ext] = fh.read() if fh else b""
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DocsynthError(f"{path}: not a readable tar shard ({exc}); regenerate this shard") from None
    if group:
        yield key, group


def iter_samples(paths: str | Path | Iterable[str | Path], *, decode: bool = True,
                 rank: int = 0, world_size: int = 1) -> Iterator[dict[str, Any]]:
    """Stream samples from tar shards: a tar file, a dataset folder, or a list of either.

    Yields ``{"id", "image", "mask", "meta", "shard"}``: with ``decode`` the image is BGR
    uint8 HxWx3 and the mask uint8 HxW 0/255 (the docsynth image contract), otherwise both
    are the encoded bytes. ``meta`` is the sample's manifest row. With ``world_size > 1``
    this process reads every ``world_size``-th shard starting at ``rank`` (whole shards per
    rank, so ranks may see a few samples more or less when shard sizes differ). In a
    DataLoader with W workers, worker w of process r reads with ``rank=r * W + w`` and
    ``world_size=world * W``.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    shards = [s for p in paths for s in list_shards(p)]
    if world_size < 1 or not 0 <= rank < world_size:
        raise DocsynthError(f"iter_samples: rank {rank} is not in 0..{world_size - 1}")
    for shard in shards[rank::world_size]:
        for key, group in _read_groups(shard):
            yield _sample(shard, str(key), group, decode)  # a group always has its key


def _sample(shard: Path, key: str, group: dict[str, bytes], decode: bool) -> dict[str, Any]:
    image_ext = next((e for e in ("jpg", "jpeg", "png") if e in group), None)
    if image_ext is None or "mask.png" not in group or "json" not in group:
        raise DocsynthError(f"{shard}: sample {key!r} lacks an image, mask.png or json member "
                            f"(has {sorted(group)}); regenerate this shard")
    try:
        meta = json.loads(group["json"])
    except json.JSONDecodeError as exc:
        raise DocsynthError(f"{shard}: {key}.json is not valid JSON ({exc.msg})") from None
    image: Any = group[image_ext]  # bytes, or decoded arrays with ``decode``
    mask: Any = group["mask.png"]
    if decode:
        image = _decode(shard, f"{key}.{image_ext}", image, color=True)
        mask = _decode(shard, f"{key}.mask.png", mask, color=False)
        mask = (mask >= 128).astype("uint8") * 255
    labels = {ext: data for ext, data in group.items() if ext in LABEL_MEMBERS}  # encoded, as written
    return {"id": key, "image": image, "mask": mask, "meta": meta, "shard": str(shard), "labels": labels}


def _decode(shard: Path, name: str, data: bytes, color: bool) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DocsynthError(f"{shard}: member {name} is not a readable image; regenerate this shard")
    return image
