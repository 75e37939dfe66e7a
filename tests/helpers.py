"""Small helpers shared by tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_docsynth(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (for exit codes, stderr and import checks)."""
    full_env = {**os.environ, "DOCSYNTH_LOAD_PLUGINS": "docsynth", **(env or {})}
    return subprocess.run([sys.executable, "-m", "docsynth", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=300)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file docsynth wrote under ``root``, except run.yaml (it records the executor and
    worker count), for byte-identity checks."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "run.yaml"}


def generate_tiny(out: str, seed: int, **generate_options) -> dict:
    """A tiny in-process `generate` run (three procedural documents and backgrounds, 64x48
    frames) into ``out``; ``generate_options`` are keys of the generate section."""
    from docsynth import config
    from docsynth.generate.shards import generate

    cfg = config.load(None, {"seed": seed, "generate.documents_count": 3, "generate.backgrounds_count": 3,
                             "generate.source_options": {"long_side": 120},
                             "generate.background_options": {"size": [120, 90]},
                             "generate.compositor_options": {"size": [64, 48]}, "generate.out": out,
                             **{f"generate.{k}": v for k, v in generate_options.items()}})
    return generate(cfg)


def built_backbone(name: str, weights: str, options: dict):
    """A 2-class model of backbone ``name``, its options built by the host as a run does."""
    from docsynth import options as options_mod
    from docsynth import plugins

    backbone = plugins.get("backbone", name)
    return backbone.build(2, weights, options_mod.build(backbone, options))


def covered_by(objs, shape):
    """Pixels the scene objects hide (alpha >= 0.5): what ``cut_mask`` removes from the page."""
    import numpy as np

    covered = np.zeros(shape, bool)
    for obj in objs:
        h, w = obj.alpha.shape
        covered[obj.y0:obj.y0 + h, obj.x0:obj.x0 + w] |= obj.alpha >= 0.5
    return covered
