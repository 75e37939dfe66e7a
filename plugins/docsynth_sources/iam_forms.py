"""Source `iam-forms`: the IAM Handwriting Database's scanned forms (printed text + handwriting).

Data: ``formsA-D.tgz``, ``formsE-H.tgz``, ``formsI-Z.tgz`` from the IAM site (login needed),
each a flat set of ``<form id>.png`` (e.g. ``a01-000u.png``), 300 dpi, 256 grey levels.
The archive a form comes from follows from the first letter of its id, so option ``sets``
(e.g. ``[E-H]``, which the reference pipeline used) works however the files were unpacked.
Files that are not forms (xml, ascii, lines, words) are ignored.
"""

from __future__ import annotations

import re
from typing import Any

from docsynth.config import F, listing_options
from docsynth.hookspecs import hookimpl
from docsynth.kinds import DocumentRef, Page
from docsynth_sources._common import choose, dataset_root, image_files, read_page

SETS = {"A-D": "abcd", "E-H": "efgh", "I-Z": "ijklmnopqrstuvwxyz"}
_FORM_ID = re.compile(r"^([a-z])\d{2}-\d{3}[a-z]?$")
BASE = "https://fki.tic.heia-fr.ch/DBs/iamDB/data"


class IAMFormsSource:
    name = "iam-forms"
    description = "IAM Handwriting Database forms: 1,539 scanned handwritten forms; options: sets (A-D, E-H, I-Z)"
    options = {**listing_options(), "sets": F((list, str, None), None, "form sets (A-D, E-H, I-Z) to read, a list or comma-separated (null: all)")}
    licence = "non-commercial research use only (IAM terms; registration required; not redistributable)"
    homepage = "https://fki.tic.heia-fr.ch/databases/iam-handwriting-database"
    terms = ("Free for non-commercial research after registration; cite Marti & Bunke (2002). "
             "Redistribution is not allowed.")
    manual_download = (
        "IAM needs a (free) account, so docsynth cannot download it for you.\n"
        "1. Register at https://fki.tic.heia-fr.ch/register and log in.\n"
        f"2. Download {BASE}/formsA-D.tgz, {BASE}/formsE-H.tgz and {BASE}/formsI-Z.tgz\n"
        "   (the reference document set used formsE-H only: set sources.options.iam-forms.sets: [E-H]).\n"
        "3. Run: docsynth sources import iam-forms formsE-H.tgz   (once per archive)")
    expected_archives = ["formsA-D.tgz", "formsE-H.tgz", "formsI-Z.tgz"]
    default_mask = "fullpage"

    def list_documents(self, options: dict[str, Any]) -> list[DocumentRef]:
        root = dataset_root(self.name, options)
        wanted = choose(options, "sets", SETS, self.name)
        letters = "".join(SETS[s] for s in (wanted or SETS))
        refs, seen = [], set()
        for path in image_files(root, {".png"}):
            m = _FORM_ID.match(path.stem)
            if not m or path.stem in seen or m.group(1) not in letters:
                continue
            seen.add(path.stem)
            group = next(k for k, v in SETS.items() if m.group(1) in v)
            refs.append(DocumentRef(id=path.stem, source=self.name, path=str(path),
                                    meta={"original_id": path.stem, "set": group, "licence": self.licence}))
        return refs

    def load_document(self, ref: DocumentRef) -> Page:
        return Page(image=read_page(ref.path))


@hookimpl
def register_sources(register):
    register(IAMFormsSource())
