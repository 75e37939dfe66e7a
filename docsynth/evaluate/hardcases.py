"""`docsynth hardcases`: a fixed, seeded benchmark of synthetic photos, one set per hard case.

Real photos are few, so an error on them is hard to attribute: was it the light desk, the
hand, the receipt? Each case here is the `realistic` compositor with that one difficulty
forced on (``CASES``), drawn from procedural pages and surfaces with a seed that training
never uses. The output is an ordinary photo folder (``images/<case>_NNN.jpg`` +
``corners.csv``), so ``docsynth evaluate DIR`` scores it and its per-subset table is the
per-case table (the subset of a photo is its name up to the first ``_``: case names have none).

The folder depends only on (``seed``, ``count``, the cases), like ``generate``'s output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from docsynth import config as config_mod
from docsynth.errors import DocsynthError
from docsynth.formats import corners as corners_csv
from docsynth.generate.stream import SampleStream
from docsynth.io import atomic_write_bytes, atomic_write_text, claim_output, encode_image
from docsynth.progress import Progress
from docsynth.schema import RunConfig

# Base of the sample indices: far beyond any index a training stream or dataset reaches, so the
# benchmark's composites are never training composites even with the same seed.
INDEX_BASE = 1 << 42
SEED = 2026
RECORD = "hardcases.yaml"  # what made the folder (a rerun with the same settings may reuse it)
SIZES = [[480, 640], [640, 480], [720, 405], [540, 720]]

# case -> compositor options forcing it (on top of the realistic defaults). Every case but
# ``nopage`` keeps a page in the frame and fully inside it (no truncation), so each photo has four
# ground-truth corners the SmartDoc protocol can score; ``nopage`` photos have empty corners in
# corners.csv, and `evaluate` counts a quad found there as a false acceptance.
_ALWAYS = {"negative_p": 0.0, "truncate_p": 0.0, "sizes": SIZES,
           # the scene mix of the first nine cases, pinned: later changes to the realistic
           # defaults (v3: pages filling the frame, larger sheets, booklets, page sizes) leave
           # their photos and published scores alone
           "full_p": 0.0, "larger_sheet_p": 0.0, "book_p": 0.0, "close_area": [0.35, 0.85],
           "camera": {"area": [0.08, 0.7]}}
_BUSY = [{"step": "props", "p": 1.0, "count": [2, 4], "on_page_p": 0.6},
         {"step": "clutter", "p": 1.0}, {"step": "distractors", "p": 1.0, "kinds": ["cable", "pen"]},
         {"step": "uneven_light", "p": 0.75}, {"step": "white_balance", "p": 0.85},
         {"step": "sensor_noise", "p": 0.6}, {"step": "jpeg", "p": 0.3, "quality": [45, 90]}]
_ON_PAGE = [{"step": "props", "p": 1.0, "count": [1, 3], "on_page_p": 1.0, "kinds": ["pen", "phone", "glasses", "mug"]},
            {"step": "distractors", "p": 1.0, "kinds": ["pen"], "count": [1, 3]},
            {"step": "uneven_light", "p": 0.75}, {"step": "white_balance", "p": 0.85},
            {"step": "sensor_noise", "p": 0.6}, {"step": "jpeg", "p": 0.3, "quality": [45, 90]}]
_ROUND = [{"step": "props", "p": 1.0, "count": [2, 4], "on_page_p": 0.0, "kinds": ["fruit", "mug"], "size": [0.2, 0.4]},
          {"step": "uneven_light", "p": 0.75}, {"step": "white_balance", "p": 0.85},
          {"step": "sensor_noise", "p": 0.6}, {"step": "jpeg", "p": 0.3, "quality": [45, 90]}]
_NOTES = [{"step": "props", "p": 1.0, "count": [1, 3], "on_page_p": 1.0, "kinds": ["note"]},
          {"step": "uneven_light", "p": 0.75}, {"step": "white_balance", "p": 0.85},
          {"step": "sensor_noise", "p": 0.6}, {"step": "jpeg", "p": 0.3, "quality": [45, 90]}]
CASES: dict[str, dict[str, Any]] = {
    "lightdesk": {"desk_p": 1.0, "card_p": 0.0, "receipt_p": 0.0},
    "clutter": {"pipeline": _BUSY, "desk_p": 0.5, "card_p": 0.0, "receipt_p": 0.0},
    "underlay": {"underlay_p": 1.0, "stacked_p": 0.0, "card_p": 0.0, "receipt_p": 0.0},
    "handcard": {"card_p": 1.0, "receipt_p": 0.0, "card_held_p": 1.0},
    "receipt": {"card_p": 0.0, "receipt_p": 1.0},
    "closeup": {"close_p": 1.0, "small_p": 0.0, "card_p": 0.0, "receipt_p": 0.0},
    "squashed": {"squash_p": 1.0},
    "greyscale": {},  # any scene, stored as a greyscale photo (see GREYSCALE)
    "heldpage": {"held_p": 1.0, "card_p": 0.0, "receipt_p": 0.0},  # a page held: palm behind, thumb on a corner
    # v3 (the failure kinds of held-out real photos):
    "fullframe": {"full_p": 1.0, "card_p": 0.0, "receipt_p": 0.0},  # the page fills >= 80% of the frame
    "largersheet": {"larger_sheet_p": 1.0, "card_p": 0.0, "receipt_p": 0.0},  # on a similar sheet 2-8% larger
    "onpage": {"pipeline": _ON_PAGE, "card_p": 0.0, "receipt_p": 0.0},  # pens, markers, objects on the page
    "round": {"pipeline": _ROUND, "card_p": 0.0, "receipt_p": 0.0},  # round objects (fruit, mugs) beside it
    "booklet": {"book_p": 1.0, "card_p": 0.0, "receipt_p": 0.0},  # one page of an open booklet
    "nopage": {"negative_p": 1.0},  # no page at all: scored as false acceptance, not Jaccard
    # v3.2 (the open-book photos; blank sheets):
    # pages bowing out of the gutter, framed as one photographs a book's page (in a small spread
    # nothing says which of two alike pages is meant; the v3 `booklet` case has such photos)
    "bowedbook": {"book_p": 1.0, "book_bow_p": 1.0, "book_area": [0.3, 0.85], "curl_p": 0.0, "fold_p": 0.0,
                  "card_p": 0.0, "receipt_p": 0.0},
    "notes": {"pipeline": _NOTES, "card_p": 0.0, "receipt_p": 0.0},  # sticky notes and flags across the page edges
    "blank": {"blank_p": 1.0, "card_p": 0.0, "receipt_p": 0.0},  # the page is a blank sheet
}
# A case's position in CASES picks its sample indices, so new cases go at the end: the photos of
# the cases before them, and every score published for them, stay the same.
GREYSCALE = {"greyscale"}


def case_config(case: str, seed: int) -> RunConfig:
    """The effective config that draws the composites of ``case``."""
    if case not in CASES:
        raise DocsynthError(f"unknown hard case {case!r} (known: {', '.join(CASES)})")
    return config_mod.typed({"seed": int(seed), "generate": {
        "source": "procedural", "documents_count": 64, "background_provider": "procedural",
        "backgrounds_count": 48, "per_document": 1, "compositor": "realistic",
        "compositor_options": {**_ALWAYS, **CASES[case]}, "source_options": {"long_side": 800},
        "background_options": {"size": [800, 600]}}})


JOURNAL = ".progress.jsonl"  # photos made so far, while the benchmark is written


def _read_journal(path: Path) -> dict[str, list]:
    """Photo name -> corners, from an interrupted run (a line cut short by it is left out)."""
    made = {}
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                made[entry["image"]] = entry["corners"]
            except (ValueError, KeyError, TypeError):
                continue
    except OSError:
        pass
    return made


def write_hardcases(out: str | Path, count: int = 24, seed: int = SEED, cases: list[str] | None = None,
                    force: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Write ``count`` photos per case into ``out`` (images/ + corners.csv); returns a summary."""
    names = list(CASES) if not cases else list(cases)
    for case in names:
        case_config(case, seed)  # unknown names fail before any work
    if count < 1:
        raise DocsynthError(f"--count must be at least 1, got {count}")
    out = Path(out)
    fingerprint = {"seed": int(seed), "count": int(count), "cases": {c: CASES[c] for c in names}}
    same = claim_output(out, out / RECORD, fingerprint, ("images", "corners.csv", RECORD, JOURNAL), force,
                        "a hard-case benchmark")
    (out / "images").mkdir(parents=True, exist_ok=True)
    # The record goes first, so that an interrupted run is resumed (its fingerprint matches);
    # each photo made is journalled with its corners, and a rerun skips those.
    atomic_write_text(out / RECORD, yaml.safe_dump({"fingerprint": fingerprint, "complete": False}, sort_keys=True))
    made_before = _read_journal(out / JOURNAL) if same else {}
    journal = (out / JOURNAL).open("a" if made_before else "w", encoding="utf-8")
    rows: list[tuple[str, np.ndarray | None]] = []
    if progress:
        progress.start(count * len(names))
    for case in names:
        offset = INDEX_BASE + list(CASES).index(case) * (1 << 24)  # each case its own composites
        cfg = case_config(case, seed)
        stream = SampleStream.from_config(cfg.generate, cfg.seed)
        for i in range(count):
            name = f"{case}_{i:03d}.jpg"
            if name in made_before and (out / "images" / name).is_file():
                before = made_before[name]  # None: a photo without a page (nopage)
                rows.append((name, None if before is None else np.asarray(before, np.float64)))
                if progress:
                    progress.advance()
                continue
            sample = stream.sample(offset + i)
            if sample is None:  # procedural pages always render; a plugin source might not
                raise DocsynthError(f"hard case {case}: sample {i} could not be made")
            image = sample.image
            if case in GREYSCALE:
                image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
            atomic_write_bytes(out / "images" / name, encode_image(image, ".jpg", 92))
            corners = None if sample.corners is None else np.asarray(sample.corners, np.float64)
            rows.append((name, corners))
            journal.write(json.dumps({"image": name, "corners": None if corners is None else corners.tolist()}) + "\n")
            journal.flush()
            if progress:
                progress.advance()
    journal.close()
    corners_csv.write(out / corners_csv.FILENAME, rows)
    digest = corners_csv.digest(out)  # names this draw: scores are comparable on the same digest
    atomic_write_text(out / RECORD, yaml.safe_dump({"fingerprint": fingerprint, "complete": True, "digest": digest},
                                                   sort_keys=True))
    (out / JOURNAL).unlink(missing_ok=True)
    return {"out": str(out), "cases": names, "per_case": count, "photos": len(rows), "seed": seed, "digest": digest}
