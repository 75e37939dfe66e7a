"""The local dataset store: where each source's data lives, and getting it there.

A source is used through an *entry*: a name in ``sources.mix`` / ``sources.options``. The entry
is usually the source's own name; ``sources.options.<entry>.source`` makes it an alias, so one
plugin can appear twice in a mix (two local folders, say). The options a source receives are
``seed``, ``count`` (what the mix asks for, for generating sources), ``root`` (by default
``<sources.root>/<source name>``, where ``fetch`` and ``import`` put the data) and whatever
``sources.options.<entry>`` sets.

Optional attributes a source may declare (read with ``getattr``; see docs/plugins.md):
``downloads`` (list of :class:`docsynth.sources.download.Download`), ``manual_download`` (text: what to
download by hand and how to import it), ``expected_archives`` (file names it comes as),
``terms`` (licence terms in a sentence), ``default_mask`` (mask strategy name) and
``problems`` (files its last listing skipped).
"""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path
from typing import Any

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.http import PoliteClient
from docsynth.options import Options
from docsynth.progress import Progress
from docsynth.schema import RunConfig
from docsynth.sources.download import archive_stem, download, extract, is_archive


def entry_source(cfg: RunConfig, entry: str) -> tuple[str, Any]:
    """(plugin name, source object) of a mix entry; unknown names list the known ones."""
    opts = cfg.sources.options.get(entry) or {}
    if not isinstance(opts, dict):
        raise DocsynthError(f"sources.options.{entry}: must be a mapping of options")
    name = str(opts.get("source", entry))
    try:
        return name, plugins.get("source", name)
    except DocsynthError:
        known = ", ".join(plugins.names("source")) or "none"
        alias = f" (entry {entry!r})" if name != entry else ""
        raise DocsynthError(f"unknown source {name!r}{alias}; known sources: {known}. For another instance of a "
                            f"source, set sources.options.{entry}.source: <known source>") from None


def dataset_dir(cfg: RunConfig, name: str) -> Path:
    return Path(cfg.sources.root) / name


def entry_values(cfg: RunConfig, entry: str, count: int | None = None) -> dict[str, Any]:
    """What the config says for source entry ``entry``: the core's ``seed``, ``root`` (and
    ``count``) under the user's options, without its ``source`` alias key (the core's)."""
    return {**_core_values(cfg, entry, count), **_user_values(cfg, entry)}


def _core_values(cfg: RunConfig, entry: str, count: int | None) -> dict[str, Any]:
    name, _ = entry_source(cfg, entry)
    values: dict[str, Any] = {"seed": cfg.seed, "root": str(dataset_dir(cfg, name))}
    if count is not None:
        values["count"] = count
    return values


def _user_values(cfg: RunConfig, entry: str) -> dict[str, Any]:
    return {k: v for k, v in (cfg.sources.options.get(entry) or {}).items() if k != "source"}


def entry_options(cfg: RunConfig, entry: str, count: int | None = None) -> Options:
    """The options object source entry ``entry`` receives."""
    _, source = entry_source(cfg, entry)
    return options_mod.build(source, _user_values(cfg, entry), f"sources.options.{entry}",
                             _core_values(cfg, entry, count))


def mask_for(cfg: RunConfig, entry: str) -> str:
    _, source = entry_source(cfg, entry)
    return str(cfg.sources.masks.get(entry) or getattr(source, "default_mask", None) or "fullpage")


def describe(cfg: RunConfig, entry: str, count: bool = True) -> dict[str, Any]:
    """What ``sources list`` shows for one entry: metadata, whether data is present, how much."""
    name, source = entry_source(cfg, entry)
    downloads = list(getattr(source, "downloads", None) or [])
    info: dict[str, Any] = {
        "name": entry, "source": name, "description": source.description, "licence": source.licence,
        "homepage": source.homepage, "terms": getattr(source, "terms", None),
        "fetch": "download" if downloads else ("manual" if getattr(source, "manual_download", None) else "none"),
        "downloads": [{"url": d.url, "filename": d.filename, "sha256": d.sha256, "size": d.size} for d in downloads],
        "expected_archives": list(getattr(source, "expected_archives", None) or []),
        "mask": mask_for(cfg, entry), "root": entry_values(cfg, entry)["root"],
        "present": False, "documents": None, "note": "",
    }
    root = Path(info["root"])
    if count and not root.exists() and "root" not in (cfg.sources.options.get(entry) or {}):
        # No data folder. A source that makes its own pages (procedural, a plugin's renderer)
        # lists documents anyway: it is ready. One that needs files says how to get them.
        try:
            refs = [] if downloads or info["fetch"] == "manual" else source.list_documents(entry_options(cfg, entry))
        except DocsynthError:
            refs = []
        if refs:
            info.update(present=True, documents=len(refs), note="ready; needs no data (makes its own pages)")
        else:
            how = {"download": f"docsynth sources fetch {entry}",
                   "manual": f"docsynth sources fetch {entry} (manual)"}
            info["note"] = "not here; " + how.get(info["fetch"], f"set sources.options.{entry}.root")
    elif count:
        try:
            refs = source.list_documents(entry_options(cfg, entry))
            info["documents"] = len(refs)
            info["present"] = bool(refs)
            problems = list(getattr(source, "problems", None) or [])
            if problems:
                info["note"] = f"{len(problems)} files skipped"
        except DocsynthError as exc:
            info["note"] = str(exc).splitlines()[0]
    return info


def unpack_nested(folder: Path, progress: Progress | None = None) -> list[str]:
    """Extract archives found inside ``folder`` next to themselves (Kaggle ships zips in a zip)
    and delete them (they are docsynth's own copies); return what was unpacked."""
    done: list[str] = []
    for _ in range(3):  # archives in archives in archives, at most
        found = sorted(p for p in folder.rglob("*") if p.is_file() and is_archive(p)
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        if not found:
            break
        for archive in found:
            target = archive.parent / archive_stem(archive)
            if target.exists():
                target = archive.parent / (archive_stem(archive) + "_unpacked")
            extract(archive, target, progress=progress)
            archive.unlink()
            done.append(str(archive.relative_to(folder)))
    return done


def fetch(cfg: RunConfig, name: str, progress: Progress | None = None,
          retries: int = 4, timeout: float = 60.0) -> dict[str, Any]:
    """Download a source's files into ``<root>/<name>/downloads`` and unpack them next to it."""
    _, source = entry_source(cfg, name)
    downloads = list(getattr(source, "downloads", None) or [])
    folder = dataset_dir(cfg, source.name)
    if not downloads:
        return {"source": name, "fetched": False, "root": str(folder),
                "manual_download": getattr(source, "manual_download", None)}
    # One client for all the source's files: they share its per-host interval.
    client = PoliteClient(contact=cfg.backgrounds.contact, retries=retries, timeout=timeout, jitter=False)
    files, unpacked = [], []
    for item in downloads:
        path = download(item, folder / "downloads", progress=progress, client=client)
        files.append(str(path))
        if is_archive(path):
            target = folder / archive_stem(path)
            if not target.exists():  # unpacked by an earlier run
                extract(path, target, progress=progress)
                unpacked.append(path.name)
                unpacked += unpack_nested(target, progress)
    return {"source": name, "fetched": True, "root": str(folder), "files": files, "unpacked": unpacked,
            **_count(source, cfg, name)}


def import_data(cfg: RunConfig, name: str, path: str | Path, force: bool = False,
                progress: Progress | None = None) -> dict[str, Any]:
    """Copy or unpack a manually downloaded archive or folder into ``<root>/<name>/``."""
    _, source = entry_source(cfg, name)
    path = Path(path)
    if not path.exists():
        raise DocsynthError(f"{path}: not found; give the downloaded archive or folder")
    folder = dataset_dir(cfg, source.name)
    warnings = []
    expected = list(getattr(source, "expected_archives", None) or [])
    if path.is_file():
        if not is_archive(path):
            raise DocsynthError(f"{path}: not a zip or tar archive; give an archive or a folder")
        if expected and not any(fnmatch.fnmatch(path.name, pat) for pat in expected):
            warnings.append(f"{path.name}: not one of the archives {name} comes as ({', '.join(expected)}); "
                            "importing anyway")
        target = folder / archive_stem(path)
    else:
        target = folder / path.resolve().name
    if folder.resolve() == path.resolve() or folder.resolve().is_relative_to(path.resolve()) \
            or path.resolve().is_relative_to(folder.resolve()):
        raise DocsynthError(f"{path}: overlaps the dataset folder {folder}; import from somewhere else")
    if target.exists():
        if not force:
            raise DocsynthError(f"{target}: already imported; use --force to import {path.name} again")
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    if path.is_file():
        extract(path, target, progress=progress)
    else:
        tmp = target.with_name(f".{target.name}.copying")
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(path, tmp, symlinks=False,
                        ignore=lambda d, names: [n for n in names if n.startswith(".")])
        tmp.rename(target)
    unpacked = unpack_nested(target, progress)
    return {"source": name, "imported": str(path), "into": str(target), "unpacked": unpacked,
            "warnings": warnings, **_count(source, cfg, name)}


def _count(source: Any, cfg: RunConfig, entry: str) -> dict[str, Any]:
    try:
        return {"documents": len(source.list_documents(entry_options(cfg, entry)))}
    except DocsynthError as exc:
        return {"documents": 0, "note": str(exc).splitlines()[0]}
