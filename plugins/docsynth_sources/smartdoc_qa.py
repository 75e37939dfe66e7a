"""Source `smartdoc-qa`: SmartDoc-QA phone photos of 30 documents (CBDAR 2015), CC BY 4.0.

Data: ``Dataset SmartDoc-QA.zip`` (13.7 GB, Zenodo record 5293201) holding
``Dataset SmartDoc-QA/Captured_Images/**/*.jpg``: 4,260 photos (30 pages x 142 captures with
two phones, several lights, blur and angles). The file name encodes the document (``D<n>``)
and the capture conditions; both are kept in the metadata. The photos show the page on a
desk, so the default mask strategy is ``threshold`` (page found by Otsu + largest contour).
"""

from __future__ import annotations

import re
from typing import Any

from docsynth.config import listing_options
from docsynth.hookspecs import hookimpl
from docsynth.kinds import DocumentRef, Page
from docsynth.sources.download import Download
from docsynth_sources._common import dataset_root, image_files, read_page

_DOC = re.compile(r"(?:^|[_-])(D\d+)(?:[_-]|$)")


class SmartDocQASource:
    name = "smartdoc-qa"
    description = "SmartDoc-QA: 4,260 phone photos of 30 documents (optional; 13.7 GB download)"
    options = listing_options()
    licence = "CC-BY-4.0 (cite Nayef et al., CBDAR 2015)"
    homepage = "http://smartdoc.univ-lr.fr/smartdoc-qa/"
    terms = "Creative Commons Attribution 4.0: credit Nayef et al., 'SmartDoc-QA', CBDAR 2015."
    # Size and md5 as published with the Zenodo record (no sha256 is published).
    downloads = [Download(url="https://zenodo.org/records/5293201/files/Dataset%20SmartDoc-QA.zip?download=1",
                          filename="Dataset SmartDoc-QA.zip", size=13_659_581_479,
                          md5="643c5e54606626694b17ac5b8984baab")]
    expected_archives = ["Dataset SmartDoc-QA.zip"]
    default_mask = "threshold"

    def list_documents(self, options: dict[str, Any]) -> list[DocumentRef]:
        root = dataset_root(self.name, options)
        refs = []
        for path in image_files(root, {".jpg", ".jpeg"}):
            rel = path.relative_to(root)
            if "Captured_Images" not in rel.parts:
                continue
            m = _DOC.search(path.stem)
            inner = rel.parts[rel.parts.index("Captured_Images") + 1:]
            refs.append(DocumentRef(id="/".join(inner)[: -len(path.suffix)], source=self.name, path=str(path),
                                    meta={"original_id": path.stem, "document": m.group(1) if m else None,
                                          "capture": list(inner[:-1]), "licence": self.licence}))
        return refs

    def load_document(self, ref: DocumentRef) -> Page:
        return Page(image=read_page(ref.path))


@hookimpl
def register_sources(register):
    register(SmartDocQASource())
