"""Worker processes that never outlive their parent and leave Ctrl-C to it.

A terminal's Ctrl-C reaches every process of the foreground group. If each pool worker raised
KeyboardInterrupt on its own, the pool could break half-way and the parent could wait forever
on a worker that is gone; so workers ignore SIGINT and the parent stops them. And a parent
killed with ``kill -9`` cannot stop anything, so each worker asks the kernel to kill it when
the parent dies (Linux: ``PR_SET_PDEATHSIG``), or else polls for its parent from a thread.

Each worker renders on one core: OpenCV's own thread pool costs more than it saves on small
frames and fights the other workers. The pool must be shrunk in the parent *before* it forks
(:func:`one_opencv_thread_while_forking`): a forked child that reconfigures the pool it copied
can wait forever on the parent's threads (seen: 1 `generate --workers 2` run in 12 hung).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import cv2

_PR_SET_PDEATHSIG = 1

# Options that start processes or threads: more than the machine can run only costs memory
# (10000 generate workers hung the machine), so they are capped, with a note, not refused.
WORKER_OPTIONS = ("sources.workers", "generate.workers", "train.workers", "train.threads")
_noted: set[str] = set()


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def worker_limit() -> int:
    """Most worker processes worth starting: one per usable CPU (at least 2, so that a 1-CPU
    box still overlaps work with input and output)."""
    return max(2, usable_cpus())


def cap_config(cfg: dict[str, Any]) -> None:
    """Cap every worker option of a loaded config at :func:`worker_limit`, in place, saying so
    once on stderr. Worker counts never change what is written, so capping is safe."""
    limit = worker_limit()
    for dotted in WORKER_OPTIONS:
        section, key = dotted.split(".")
        value = cfg.get(section, {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            cfg[section][key] = limit
            if dotted not in _noted:
                _noted.add(dotted)
                sys.stderr.write(f"docsynth: note: '{dotted}' is {value}; capped at {limit}, the CPUs this "
                                 "machine gives docsynth (more would only use memory)\n")


def _set_parent_death_signal() -> bool:
    """Linux: SIGKILL this process when the thread that started it exits. False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, every: float = 0.5) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="docsynth-parent-watch", daemon=True).start()


def tie_to_parent(parent: int) -> None:
    """Call first thing in a worker process; ``parent`` is the pid of the process that owns it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not _set_parent_death_signal():
        _watch_parent(parent)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)


def one_opencv_thread(*_: Any) -> None:
    """In a worker: OpenCV on one thread. A forked worker inherits that from its parent (see
    :func:`one_opencv_thread_while_forking`) and touches nothing; a spawned one sets it. Usable
    as a DataLoader ``worker_init_fn``."""
    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)


@contextlib.contextmanager
def one_opencv_thread_while_forking() -> Iterator[None]:
    """OpenCV on one thread in this process while workers are forked (and, for in-process
    work, while it runs); the caller's setting comes back afterwards."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)
