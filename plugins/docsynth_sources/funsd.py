"""Source `funsd`: FUNSD, 199 noisy scanned forms (sampled from RVL-CDIP), open download.

Data: ``dataset.zip`` holding ``dataset/training_data/images/<id>.png`` (149) and
``dataset/testing_data/images/<id>.png`` (50), each with ``annotations/<id>.json`` (words and
entity boxes, not page outlines; the words become the page's text labels). The zip also carries
``__MACOSX/`` junk, which is skipped.
"""

from __future__ import annotations

from typing import Any

from docsynth.config import F, listing_options
from docsynth.hookspecs import hookimpl
from docsynth.kinds import DocumentRef, Page
from docsynth.sources.download import Download
from docsynth_sources._common import box_word, choose, dataset_root, image_files, read_json_words, read_page

SPLITS = {"training_data": "train", "testing_data": "test"}


class FUNSDSource:
    name = "funsd"
    description = "FUNSD: 199 scanned forms (noisy, ~100 dpi); options: splits (train, test)"
    options = {**listing_options(), "splits": F((list, str, None), None, "splits (train, test) to read, a list or comma-separated (null: all)")}
    licence = "non-commercial research and educational use (FUNSD terms)"
    homepage = "https://guillaumejaume.github.io/FUNSD/"
    terms = "Use for non-commercial research and education; cite Jaume et al., ICDAR-OST 2019."
    downloads = [Download(url="https://guillaumejaume.github.io/FUNSD/dataset.zip", filename="dataset.zip",
                          sha256="c31735649e4f441bcbb4fd0f379574f7520b42286e80b01d80b445649d54761f")]
    expected_archives = ["dataset.zip"]
    default_mask = "fullpage"

    def list_documents(self, options: dict[str, Any]) -> list[DocumentRef]:
        root = dataset_root(self.name, options)
        wanted = choose(options, "splits", SPLITS.values(), self.name) or set(SPLITS.values())
        refs, seen = [], set()
        for path in image_files(root, {".png"}):
            if path.parent.name != "images" or path.parent.parent.name not in SPLITS:
                continue
            split = SPLITS[path.parent.parent.name]
            doc_id = f"{split}/{path.stem}"
            if split not in wanted or doc_id in seen:
                continue
            seen.add(doc_id)
            annotation = path.parent.parent / "annotations" / f"{path.stem}.json"
            refs.append(DocumentRef(id=doc_id, source=self.name, path=str(path),
                                    meta={"split": split, "original_id": path.stem, "licence": self.licence,
                                          "annotation": str(annotation) if annotation.is_file() else None}))
        return refs

    def load_document(self, ref: DocumentRef) -> Page:
        return Page(image=read_page(ref.path), words=read_json_words(ref.meta.get("annotation"), funsd_words))


def funsd_words(data: Any) -> list[dict[str, Any]]:
    """The words of a FUNSD annotation (``form[].words[]``: text and [x0, y0, x1, y1])."""
    words = []
    for entity in data.get("form", []) if isinstance(data, dict) else []:
        for w in entity.get("words", []) if isinstance(entity, dict) else []:
            word = box_word(w.get("text"), w.get("box")) if isinstance(w, dict) else None
            if word:
                words.append(word)
    return words


@hookimpl
def register_sources(register):
    register(FUNSDSource())
