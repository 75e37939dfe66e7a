"""Where a command may write: checked before any work starts.

Every command that writes calls these on its output paths first, so a bad ``--out`` is one
line naming the path instead of a traceback after minutes of work, and an output never
replaces an input (not even with ``--force``) or a file docsynth did not write (only with
``--force``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from docsynth.errors import DocsynthError


def _existing_ancestor(path: Path) -> Path:
    """``path`` itself or its nearest ancestor that exists (what a mkdir would start from)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and not path.is_symlink() and path != path.parent:
        path = path.parent
    return path


def _writable_from(path: Path, flag: str) -> None:
    base = _existing_ancestor(path)
    if not base.is_dir():
        raise DocsynthError(f"{path}: cannot be created because {base} is a file, not a folder; "
                            f"choose another {flag}")
    if not os.access(base, os.W_OK | os.X_OK):
        raise DocsynthError(f"{path}: cannot write in {base} (permission denied or read-only); "
                            f"choose another {flag}")


def check_folder(path: str | Path, flag: str = "--out") -> Path:
    """An output folder: it is a folder or can be made, and we may write in it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DocsynthError(f"{path}: exists and is not a folder; choose another {flag}")
    _writable_from(path, flag)
    return path


def check_file(path: str | Path, flag: str = "--out") -> Path:
    """An output file: not a folder, and its folder can be made and written."""
    path = Path(path)
    if path.is_dir():
        raise DocsynthError(f"{path}: is a folder; {flag} names a file to write")
    _writable_from(path.parent, flag)
    return path


def _inside(path: str | Path, folder: str | Path) -> bool:
    path, folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return path == folder or folder in path.parents


def refuse_overlap(out: str | Path, inputs: Iterable[str | Path | None], flag: str = "--out",
                   holding: bool = True) -> None:
    """An output folder must not be an input, nor (``holding``: for commands whose ``--force``
    clears the folder) hold one: writing there could replace or delete what the command reads."""
    for item in inputs:
        if item is None or not Path(item).exists():
            continue
        same = os.path.realpath(item) == os.path.realpath(out)
        if same or (holding and _inside(Path(item), Path(out))):
            raise DocsynthError(f"{out}: {flag} {'is' if same else 'holds'} the input {item}; writing there "
                                f"could replace it, so choose another {flag}")


def refuse_inside(out: str | Path, inputs: Iterable[str | Path | None], flag: str = "--out") -> None:
    """An output folder must not lie inside an input folder that the command lists recursively:
    the next run would read its composites, pages or sheets back as input."""
    for item in inputs:
        if item is None or not Path(item).is_dir():
            continue
        if os.path.realpath(item) != os.path.realpath(out) and _inside(Path(out), Path(item)):
            raise DocsynthError(f"{out}: {flag} is inside the input folder {item}, so a rerun would read its "
                                f"own output as input; choose a {flag} outside {item}")


def refuse_replacing(files: Iterable[str | Path], inputs: Iterable[str | Path], ours: Iterable[str | Path] = (),
                     force: bool = False, flag: str = "--out") -> None:
    """Output files may never replace an input (a file in ``inputs`` or inside an input folder),
    and replace an existing file not in ``ours`` (what docsynth wrote there before) only with
    ``force``."""
    inputs = [Path(i) for i in inputs]
    ours_real = {os.path.realpath(p) for p in ours}
    for file in map(Path, files):
        if not file.exists():
            continue
        if any(_inside(file, i) for i in inputs):
            raise DocsynthError(f"{file}: would replace an input file; choose another {flag}")
        if not force and os.path.realpath(file) not in ours_real:
            raise DocsynthError(f"{file}: exists; pass --force to replace it, or choose another {flag}")
