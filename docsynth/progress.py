"""Progress: how much of a job is done, out of how much. Every long job reports it the same way,
through a :class:`Progress` it is handed (``start`` once the total is known, ``advance`` as
units finish: samples, photos, files, bytes); commands hand it a :class:`Bar`, drawn with rich
on stderr so that stdout stays clean for results and --json. Nothing else is called progress:
messages are ``say``/``note``/``warn``, the resume files of scan and hardcases are journals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


class Progress:
    """A job's progress, reported to nobody: what a job gets when no one watches it, and the
    base of every other kind."""

    def start(self, total: int | None, done: int = 0) -> None:
        """The job has ``total`` units (None: not known); ``done`` of them were finished before
        (by an earlier, interrupted run)."""

    def advance(self, n: int = 1) -> None:
        """``n`` more units are finished."""


class Bar(Progress):
    """A progress bar on stderr (drawn only in a terminal)."""

    def __init__(self, progress: RichProgress, label: str):
        self._progress = progress
        self._task = progress.add_task(label, total=None)

    def start(self, total: int | None, done: int = 0) -> None:
        self._progress.update(self._task, total=total, completed=done)

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)


@contextmanager
def progress_bar(label: str) -> Iterator[Progress]:
    console = Console(stderr=True)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with RichProgress(*columns, console=console, transient=False, disable=not console.is_terminal) as progress:
        yield Bar(progress, label)


# What `docsynth run` is given to show each stage's progress: label -> a context giving a Progress.
Bars = Callable[[str], AbstractContextManager[Progress]]
