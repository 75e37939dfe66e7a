"""Source `folder`: any directory of document images (searched recursively)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docsynth.errors import DocsynthError
from docsynth.hookspecs import hookimpl
from docsynth.io import list_images, read_image
from docsynth.kinds import DocumentRef, Page


class FolderSource:
    name = "folder"
    description = "every image under a folder (options: root)"
    licence = "as the files' owner says"
    homepage = ""

    def list_documents(self, options: dict[str, Any]) -> list[DocumentRef]:
        root = options.get("root")
        if not root:
            raise DocsynthError("folder source needs option 'root' (a folder of images)")
        root = Path(root)
        if not root.is_dir():
            raise DocsynthError(f"{root}: folder not found (folder source option 'root')")
        return [DocumentRef(id=str(p.relative_to(root).with_suffix("")), source=self.name, path=str(p),
                            meta={"original": str(p)}) for p in list_images(root)]

    def load_document(self, ref: DocumentRef) -> Page:
        return Page(image=read_image(ref.path))


@hookimpl
def register_sources(register):
    register(FolderSource())
