"""A run folder's layout, as `docsynth run` writes it and the report reads it.

``RUN/run.yaml`` (the config), ``RUN/last_run.json`` (the last run's summary), and one folder
``RUN/<stage>/`` per stage, in :data:`STAGE_ORDER`, each with its record :data:`RECORD`
(key, status, output id, attempts, summary) and, while a run holds the folder, ``RUN/.lock``.
"""

from __future__ import annotations

STAGE_ORDER = ("sources", "backgrounds", "generate", "split", "train", "evaluate")
RECORD = ".stage.json"
LOCK = ".lock"
