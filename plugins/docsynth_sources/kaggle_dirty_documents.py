"""Source `kaggle-dirty-documents`: Kaggle's "Denoising Dirty Documents" competition pages.

Data: ``train/``, ``train_cleaned/`` (the same pages without noise) and ``test/`` of
``<n>.png`` greyscale scans, 540 px wide (144 + 144 + 72 = 360 images). Kaggle ships them as
``train.zip``, ``train_cleaned.zip``, ``test.zip`` or, with newer CLIs, as one
``denoising-dirty-documents.zip`` holding those zips; ``sources import`` unpacks both forms.
The reference pipeline used all three folders (option ``splits`` picks some).
"""

from __future__ import annotations

from typing import Any

from docsynth.config import F, listing_options
from docsynth.hookspecs import hookimpl
from docsynth.kinds import DocumentRef, Page
from docsynth_sources._common import choose, dataset_root, image_files, read_page

SPLITS = ("train", "train_cleaned", "test")


class KaggleDirtyDocumentsSource:
    name = "kaggle-dirty-documents"
    description = "Kaggle Denoising Dirty Documents: 360 noisy/cleaned text scans; options: splits"
    options = {**listing_options(), "splits": F((list, str, None), None, "splits to read, a list or comma-separated (null: all)")}
    licence = "Kaggle competition rules (data from Castro-Bleda et al., UCI); research use"
    homepage = "https://www.kaggle.com/c/denoising-dirty-documents"
    terms = "Accept the competition rules on kaggle.com before downloading (the API cannot accept them)."
    manual_download = (
        "Kaggle needs an account and the competition rules accepted on the website.\n"
        "1. Open https://www.kaggle.com/c/denoising-dirty-documents/rules and accept the rules.\n"
        "2. Download the data: 'kaggle competitions download -c denoising-dirty-documents'\n"
        "   (needs ~/.kaggle/kaggle.json) or the 'Download All' button on the Data tab.\n"
        "3. Run: docsynth sources import kaggle-dirty-documents denoising-dirty-documents.zip\n"
        "   (or import train.zip, train_cleaned.zip and test.zip one by one)")
    expected_archives = ["denoising-dirty-documents.zip", "train.zip", "train_cleaned.zip", "test.zip"]
    default_mask = "fullpage"

    def list_documents(self, options: dict[str, Any]) -> list[DocumentRef]:
        root = dataset_root(self.name, options)
        wanted = choose(options, "splits", SPLITS, self.name) or set(SPLITS)
        refs, seen = [], set()
        for path in image_files(root, {".png"}):
            split = path.parent.name
            if split not in wanted or not path.stem.isdigit():
                continue
            doc_id = f"{split}/{path.stem}"
            if doc_id in seen:
                continue
            seen.add(doc_id)
            refs.append(DocumentRef(id=doc_id, source=self.name, path=str(path),
                                    meta={"split": split, "original_id": path.stem, "licence": self.licence}))
        return refs

    def load_document(self, ref: DocumentRef) -> Page:
        return Page(image=read_page(ref.path))


@hookimpl
def register_sources(register):
    register(KaggleDirtyDocumentsSource())
