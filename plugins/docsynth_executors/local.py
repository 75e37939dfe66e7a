"""The default executor: a local process pool (or the current process for one worker).

Stopping: workers ignore Ctrl-C and die with their parent (:mod:`docsynth.workers`). On Ctrl-C
the parent cancels the queued tasks, gives running ones ``STOP_GRACE`` seconds to finish (a
finished shard is kept), then kills the workers; a second Ctrl-C skips the grace. Only a few
tasks are queued at a time, so there is never a long queue to drain first.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures import process as _cf_process
from typing import Any

from docsynth.config import F
from docsynth.hookspecs import hookimpl
from docsynth.options import Options, build
from docsynth.workers import tie_to_parent

STOP_GRACE = 0.5  # seconds running tasks get to finish after the first Ctrl-C


def _start_worker(parent: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    tie_to_parent(parent)
    if initializer:
        initializer(*initargs)


def _stop(pool: ProcessPoolExecutor, pending: dict[Future, int], grace: float) -> None:
    """Stop now: drop queued tasks, let running ones finish for ``grace`` s, kill the rest."""
    for fut in pending:
        fut.cancel()
    try:
        running = [f for f in pending if not f.done()]
        if grace > 0 and running:
            wait(running, timeout=grace)
    except KeyboardInterrupt:  # a second Ctrl-C: no grace
        pass
    finally:
        # The pool has no public way to kill its workers; shutdown() alone waits for them.
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(OSError, ValueError):
                proc.kill()
        thread = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
        pool.shutdown(wait=False, cancel_futures=True)
        # At exit, concurrent.futures wakes every pool's manager thread through a pipe; after
        # the kill above that pipe may already be closed, and the write then prints an
        # "OSError: Bad file descriptor" traceback after our one-line message. Let the thread
        # finish and forget its wake-up pipe (private, hence guarded).
        if thread is not None:
            thread.join(timeout=1.0)
            with contextlib.suppress(Exception):  # another Python's internals: the worst case is that traceback
                _cf_process._threads_wakeups.pop(thread, None)


class LocalExecutor:
    name = "local"
    description = "process pool on this machine; workers=1 runs in the calling process"
    options = {"start_method": F((str, None), None, "multiprocessing start method (null: fork where "
                                 "available, else spawn)", choices=("fork", "spawn", "forkserver"))}

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], *, workers: int,
            initializer: Callable[..., None] | None = None, initargs: tuple = (),
            options: Options | None = None) -> Iterator[tuple[int, Any]]:
        options = options or build(self, {})  # a caller without options (prepare) gets the defaults
        if workers <= 1 or len(tasks) <= 1:
            if initializer:
                initializer(*initargs)
            for i, task in enumerate(tasks):
                yield i, fn(task)
            return
        # fork is cheapest and the generate path never imports torch; callers that hold
        # threads (training) pass start_method: spawn.
        method = options.start_method or ("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method),
                                   initializer=_start_worker, initargs=(os.getpid(), initializer, initargs))
        todo = iter(enumerate(tasks))
        pending: dict[Future, int] = {}

        def top_up() -> None:  # two tasks per worker in flight: busy, yet quick to stop
            for i, task in todo:
                pending[pool.submit(fn, task)] = i
                if len(pending) >= 2 * workers:
                    return

        try:
            top_up()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    result = fut.result()
                    top_up()
                    yield i, result
        except KeyboardInterrupt:
            _stop(pool, pending, STOP_GRACE)
            raise
        except BaseException:  # a task failed, or the caller stopped reading
            _stop(pool, pending, 0)
            raise
        pool.shutdown(wait=True)


@hookimpl
def register_executors(register):
    register(LocalExecutor())
