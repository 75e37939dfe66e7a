"""Rich progress bars on stderr, so stdout stays clean for results and --json."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Bar:
    def __init__(self, progress: Progress, label: str):
        self._progress = progress
        self._task = progress.add_task(label, total=None)

    def start(self, total: int, done: int = 0) -> None:
        """Set the total; ``done`` items were finished by an earlier run."""
        self._progress.update(self._task, total=total, completed=done)

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)


@contextmanager
def progress_bar(label: str) -> Iterator[Bar]:
    console = Console(stderr=True)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as progress:
        yield Bar(progress, label)
