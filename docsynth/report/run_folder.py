"""What `docsynth run` left in a folder, as the report reads it: the config, and per stage its
record (``.stage.json``) and files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from docsynth.errors import DocsynthError
from docsynth.formats.runfolder import RECORD, STAGE_ORDER


class RunFolder:
    """What `docsynth run` left in a folder: the config, and per stage its record and files."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DocsynthError(f"{self.root}: run folder not found; pass the run.dir of a `docsynth run`")
        self.config: dict[str, Any] = {}
        if (self.root / "run.yaml").is_file():
            try:
                self.config = yaml.safe_load((self.root / "run.yaml").read_text(encoding="utf-8")) or {}
            except yaml.YAMLError:
                self.config = {}
        self.records = {name: read_json(self.root / name / RECORD) for name in STAGE_ORDER}
        if not isinstance(self.config, dict) or "fingerprint" in self.config:
            self.config = {}  # a dataset's run.yaml (generate's record), not a run's config
        if not self.config and not any(self.records.values()):
            raise DocsynthError(f"{self.root}: no run config (run.yaml of `docsynth run`) and no stage folders; "
                                "not a `docsynth run` folder: pass the run.dir of a `docsynth run`")
        self.last_run = read_json(self.root / "last_run.json")

    def stage_dir(self, name: str) -> Path:
        return self.root / name

    def complete(self, name: str) -> bool:
        record = self.records.get(name)
        return bool(record and record.get("status") == "complete")

    def selected(self) -> list[str]:
        stages = ((self.config.get("run") or {}).get("stages")) or []
        return [s for s in STAGE_ORDER if s in stages]

    def why_missing(self, name: str) -> str:
        """One sentence on why a stage has no output to show."""
        record = self.records.get(name)
        if record:
            status = record.get("status")
            if status == "running":
                return (f"The {name} stage is running (or its process was killed); "
                        "`docsynth run` resumes it if it is not running.")
            error = f": {record['error']}" if record.get("error") else ""
            return f"The {name} stage did not finish (status {status}{error}); rerun `docsynth run` to resume it."
        if self.config and name not in self.selected():
            return f"The {name} stage is not part of this run (not in run.stages)."
        return f"The {name} stage has not run yet in this run folder."


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
