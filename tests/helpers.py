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
