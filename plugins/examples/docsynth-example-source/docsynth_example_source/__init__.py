"""Example third-party plugin: the `ruled` source (lined notebook pages)."""

from __future__ import annotations

import numpy as np

from docsynth.config import F
from docsynth.hookspecs import hookimpl
from docsynth.kinds import DocumentRef, Page
from docsynth.options import Options


class RuledPages:
    name = "ruled"
    description = "lined notebook pages with a red margin (example plugin)"
    licence = "CC0-1.0"
    homepage = "https://example.org/docsynth-example-source"

    # Typed options: the host checks them when the config loads and hands list_documents an
    # Options object with every default filled in (the core sets count from documents_count).
    options = {"count": F(int, 4, "how many pages to list", low=0)}

    def list_documents(self, options: Options) -> list[DocumentRef]:
        count = options.count
        return [DocumentRef(id=f"ruled-{i}", source=self.name, meta={"index": i}) for i in range(count)]

    def load_document(self, ref: DocumentRef) -> Page:
        h, w = 560, 400
        page = np.full((h, w, 3), 250, np.uint8)
        spacing = 18 + ref.meta["index"] % 5
        page[60::spacing, :, :] = (200, 160, 120)  # blue-ish rules (BGR)
        page[:, 50:52] = (60, 60, 220)  # red margin
        return Page(image=page)


@hookimpl
def register_sources(register):
    register(RuledPages())
