"""The default executor: a local process pool (or the current process for one worker)."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence

from docsynth.hookspecs import hookimpl


class LocalExecutor:
    name = "local"
    description = "process pool on this machine; workers=1 runs in the calling process"

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], *, workers: int,
            initializer: Callable[..., None] | None = None, initargs: tuple = (),
            options: dict[str, Any] | None = None) -> Iterator[tuple[int, Any]]:
        options = options or {}
        if workers <= 1 or len(tasks) <= 1:
            if initializer:
                initializer(*initargs)
            for i, task in enumerate(tasks):
                yield i, fn(task)
            return
        # fork is cheapest and the generate path never imports torch; callers that hold
        # threads (training) pass start_method: spawn.
        method = options.get("start_method") or ("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method),
                                 initializer=initializer, initargs=initargs) as pool:
            pending = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    yield i, fut.result()


@hookimpl
def register_executors(register):
    register(LocalExecutor())
