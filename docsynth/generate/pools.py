"""Where generation gets its documents and backgrounds from.

A pool is an ordered list of references plus a loader. It is built either from a folder on
disk (a prepared ``documents/`` folder with ``documents.jsonl``, a ``backgrounds/`` folder, or
any folder of images) or from a plugin (a source or background provider). Pools are built in
the parent process and shipped once to each worker.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.io import read_image, read_jsonl, read_mask
from docsynth.kinds import BackgroundRef, DocumentRef, Page
from docsynth.options import Options
from docsynth.schema import GenerateSection


def _listed(lister: Callable[[Options], list], options: Options, count: int | None, seed: int,
            salt: int, empty: str) -> list:
    """What a plugin lists with its options (the core's ``seed`` and ``count`` under the
    user's), as a seeded subset of ``count`` that keeps their order; the ``empty`` line when it
    lists nothing."""
    refs = lister(options)
    if not refs:
        raise DocsynthError(empty)
    if count is None or len(refs) <= count:
        return refs
    rng = np.random.default_rng(np.random.SeedSequence([seed, salt]))
    keep = np.sort(rng.choice(len(refs), size=count, replace=False))
    return [refs[i] for i in keep]


class ByteLRU:
    """Decoded images kept for reuse, least recently used out first, up to ``limit`` bytes
    (one entry is always kept: the one in use). Only saves time: a miss decodes again."""

    def __init__(self, limit: int):
        self.limit = int(limit)
        self._items: OrderedDict[int, tuple[Any, int]] = OrderedDict()
        self._bytes = 0

    def __getstate__(self) -> dict[str, Any]:  # a pool is shipped to workers without its cache
        return {"limit": self.limit}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["limit"])  # type: ignore[misc]

    def get(self, key: int) -> Any | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        self._items.move_to_end(key)
        return hit[0]

    def put(self, key: int, value: Any, nbytes: int) -> None:
        self._items[key] = (value, nbytes)
        self._bytes += nbytes
        while self._bytes > self.limit and len(self._items) > 1:
            _, (_, gone) = self._items.popitem(last=False)
            self._bytes -= gone


def _page_bytes(page: Page) -> int:
    return page.image.nbytes + (page.mask.nbytes if page.mask is not None else 0)


class DocumentPool:
    def __init__(self, refs: list[DocumentRef], source_names: dict[str, str], mask: str,
                 root: Path | None = None, cache_bytes: int = 0):
        self.refs = refs
        self.source_names = source_names  # ref.source -> plugin used to load it ("" = prepared)
        self.mask = mask
        self.root = root
        self._cache = ByteLRU(cache_bytes)

    @classmethod
    def from_config(cls, gen: GenerateSection, seed: int) -> DocumentPool:
        folder = gen.documents
        mask = gen.mask
        if folder:
            root = Path(folder)
            if not root.is_dir():
                raise DocsynthError(f"{root}: documents folder not found (generate.documents / --documents)")
            manifest = root / "documents.jsonl"
            if manifest.is_file():
                # documents.jsonl paths are relative to the documents folder
                refs = [DocumentRef(id=str(r["id"]), source=str(r.get("source", "prepared")),
                                    path=str(root / r["image"]),
                                    meta={**r, "mask_path": str(root / r["mask"]) if r.get("mask") else None})
                        for r in read_jsonl(manifest)]
                names = {r.source: "" for r in refs}
            else:
                source = plugins.get("source", "folder")
                refs = source.list_documents(options_mod.build(source, {}, "generate.documents", {"root": str(root)}))
                names = {r.source: "folder" for r in refs}
            if not refs:
                raise DocsynthError(f"{root}: no document images found; add images or prepare documents first")
            return cls(refs, names, mask, root, cache_bytes=_share(gen, "documents"))
        name = gen.source
        source = plugins.get("source", name)
        options = options_mod.build(source, gen.source_options, "generate.source_options",
                                    {"seed": seed, "count": gen.documents_count})
        refs = _listed(source.list_documents, options, gen.documents_count, seed, 1,
                       f"source {name!r} listed no documents; check generate.source_options")
        return cls(refs, {r.source: name for r in refs}, mask, cache_bytes=_share(gen, "documents"))

    def __len__(self) -> int:
        return len(self.refs)

    def load(self, index: int) -> Page:
        """Load document ``index`` with its mask, from the cache when it is there (the samples
        of one document are consecutive, and small pools come round again)."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        ref = self.refs[index]
        plugin = self.source_names.get(ref.source, "")
        page = plugins.get("source", plugin).load_document(ref) if plugin else _load_prepared(ref)
        if page.mask is None:
            page = plugins.get("mask", self.mask).make_mask(page)
        self._cache.put(index, page, _page_bytes(page))
        return page


def _load_prepared(ref: DocumentRef) -> Page:
    image = read_image(str(ref.path))  # prepared documents always have a file
    mask = read_mask(ref.meta["mask_path"]) if ref.meta.get("mask_path") else None
    corners = ref.meta.get("corners")
    corners = np.asarray(corners, dtype=np.float64) if corners else None
    return Page(image=image, mask=mask, corners=corners, words=ref.meta.get("words"))


class BackgroundPool:
    def __init__(self, refs: list[BackgroundRef], provider: str, cache_bytes: int = 0):
        self.refs = refs
        self.provider = provider
        self._cache = ByteLRU(cache_bytes)

    @classmethod
    def from_config(cls, gen: GenerateSection, seed: int) -> BackgroundPool:
        folder = gen.backgrounds
        if folder:
            root = Path(folder)
            if not root.is_dir():
                raise DocsynthError(f"{root}: backgrounds folder not found (generate.backgrounds / --backgrounds)")
            provider = plugins.get("background", "folder")
            refs = provider.list_backgrounds(options_mod.build(provider, {}, "generate.backgrounds",
                                                               {"root": str(root)}))
            if not refs:
                raise DocsynthError(f"{root}: no background images found; add JPEG/PNG files")
            return cls(refs, "folder", cache_bytes=_share(gen, "backgrounds"))
        name = gen.background_provider
        provider = plugins.get("background", name)
        options = options_mod.build(provider, gen.background_options, "generate.background_options",
                                    {"seed": seed, "count": gen.backgrounds_count})
        refs = _listed(provider.list_backgrounds, options, gen.backgrounds_count, seed, 2,
                       f"background provider {name!r} listed no backgrounds")
        return cls(refs, name, cache_bytes=_share(gen, "backgrounds"))

    def __len__(self) -> int:
        return len(self.refs)

    def load(self, index: int) -> np.ndarray:
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        image = plugins.get("background", self.provider).load_background(self.refs[index])
        self._cache.put(index, image, image.nbytes)
        return image


def _share(gen: GenerateSection, pool: str) -> int:
    """Bytes of ``generate.cache_mb`` for one pool: a quarter for pages (a document's samples
    are consecutive, so few are reused), the rest for backgrounds (drawn at random)."""
    total = gen.cache_mb * 1024 * 1024
    return total // 4 if pool == "documents" else total - total // 4
