"""Background provider `folder`: every image under a folder (a `backgrounds/` folder or any other).

When the folder has a ``backgrounds.jsonl`` (written by ``docsynth backgrounds``), ids,
licences and authors come from it; images without a record are listed by their path. The
``duplicates/``, ``originals/`` and ``rejected/`` subfolders are never listed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from docsynth.backgrounds.folder import folder_backgrounds
from docsynth.config import listing_options, root_folder
from docsynth.hookspecs import hookimpl
from docsynth.io import read_image
from docsynth.kinds import BackgroundRef


class FolderBackgrounds:
    name = "folder"
    description = "every image under a folder (options: root); records from backgrounds.jsonl when present"
    licence = "as the files' owner says (per image in backgrounds.jsonl when present)"
    options = listing_options()

    def list_backgrounds(self, options: dict[str, Any]) -> list[BackgroundRef]:
        root = root_folder(options, "folder background provider needs option 'root'",
                           "{root}: folder not found (background option 'root')")
        return folder_backgrounds(root, ref_provider=self.name)

    def load_background(self, ref: BackgroundRef) -> np.ndarray:
        return read_image(ref.path)


@hookimpl
def register_backgrounds(register):
    register(FolderBackgrounds())
