"""Background provider `folder`: every image under a folder (a `backgrounds/` folder or any other)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from docsynth.errors import DocsynthError
from docsynth.hookspecs import hookimpl
from docsynth.io import list_images, read_image
from docsynth.kinds import BackgroundRef


class FolderBackgrounds:
    name = "folder"
    description = "every image under a folder (options: root)"
    licence = "as the files' owner says"

    def list_backgrounds(self, options: dict[str, Any]) -> list[BackgroundRef]:
        root = options.get("root")
        if not root:
            raise DocsynthError("folder background provider needs option 'root'")
        root = Path(root)
        if not root.is_dir():
            raise DocsynthError(f"{root}: folder not found (background option 'root')")
        return [BackgroundRef(id=str(p.relative_to(root).with_suffix("")), provider=self.name, path=str(p))
                for p in list_images(root)]

    def load_background(self, ref: BackgroundRef) -> np.ndarray:
        return read_image(ref.path)


@hookimpl
def register_backgrounds(register):
    register(FolderBackgrounds())
