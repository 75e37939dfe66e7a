"""The Ray executor: each task (a shard of sample indices) runs as a Ray task.

``docsynth generate --executor ray`` starts a private local Ray instance sized by
``--workers``; ``--address auto`` or ``--address HOST:PORT`` joins a running cluster instead
(``ray start --head`` on one machine, ``ray start --address HOST:PORT`` on the others), where
the cluster's CPUs decide the parallelism. Install with ``pip install 'docsynth[ray]'``.

How it keeps the promises of the executor contract:

- The worker context (``initargs``: for generate, the config and the document and background
  pools) is stored once in the object store with ``ray.put``; each Ray worker process fetches
  it and runs ``initializer`` the first time it sees it, never per task or per sample.
- Results are yielded as tasks finish, so the caller's progress bar moves shard by shard.
- A task that raises or whose worker dies is resubmitted up to ``max_retries`` times. A
  :class:`DocsynthError` is not retried: it is the user's input, and it fails the same way
  every time.
- Output is whatever ``fn`` writes. With several machines, ``--out`` (and input folders) must
  be on a filesystem every node sees at the same path.

Options (``generate.executor_options``): ``address``, ``max_retries`` (3), ``cpus_per_task``
(1), ``max_in_flight`` (tasks submitted at once; default twice the cluster's CPUs),
``runtime_env`` (passed to ``ray.init`` when joining a cluster, e.g. ``{"pip": [...]}``).
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from docsynth.config import AT_LEAST_1, COUNT, POSITIVE, F
from docsynth.errors import DocsynthError
from docsynth.hookspecs import hookimpl
from docsynth.options import Options, build

OPTIONS = {
    "address": F((str, None), None, "cluster to join: auto or HOST:PORT (null: a local Ray)"),
    "max_retries": F(int, 3, "retries of a failed task", **COUNT),
    "cpus_per_task": F(float, 1.0, "CPUs Ray reserves per task", **POSITIVE),
    "max_in_flight": F((int, None), None, "tasks submitted at once (null: twice the cluster's CPUs)", **AT_LEAST_1),
    "runtime_env": F((dict, None), None, "passed to ray.init when joining a cluster"),
}
INSTALL_HINT = "pip install 'docsynth[ray]'"


def _import_ray():
    try:
        import ray  # optional extra [ray]
    except ImportError:
        raise DocsynthError(f"executor ray: the ray package is not installed; run: {INSTALL_HINT}") from None
    return ray


# -- worker side ---------------------------------------------------------------------------------

# The context object a Ray worker process has initialised, by object id. Ray reuses worker
# processes between tasks of one job, so the context is fetched and set up once per process.
_READY: dict[str, str | None] = {"context": None}


def _run_task(fn: Callable[[Any], Any], initializer: Callable[..., None] | None,
              boxed_context: list, task: Any) -> Any:
    """Body of every Ray task. ``boxed_context`` is ``[ObjectRef, driver's cwd]``: the ref sits
    inside a list so Ray does not resolve (and deserialise) it for each task; it is resolved
    here once per process."""
    import ray  # optional extra [ray] (this runs on a Ray worker)

    ref, cwd = boxed_context
    # Relative paths in the config (--out data/synth) mean the driver's folder. Ray workers
    # start elsewhere; follow the driver where that folder exists (same machine or a shared
    # filesystem mounted at the same path), otherwise only absolute paths can work.
    if os.getcwd() != cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    if _READY["context"] != ref.hex():
        initargs = ray.get(ref)
        if initializer is not None:
            initializer(*initargs)
        _READY["context"] = ref.hex()
    return fn(task)


# -- driver side ---------------------------------------------------------------------------------


def _docsynth_env() -> dict[str, str]:
    """DOCSYNTH_* variables (which plugins load, ...) so cluster workers behave like this shell."""
    return {k: v for k, v in os.environ.items() if k.startswith("DOCSYNTH_")}


def _connect(ray, address: str | None, workers: int, runtime_env: dict[str, Any] | None) -> bool:
    """Make sure this process is a Ray driver; True when we started Ray and must shut it down."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        if address is None:
            # A private single-machine instance for this run ("local": never join a cluster
            # that `ray start` left running here); workers inherit our environment.
            ray.init(address="local", num_cpus=max(1, workers), include_dashboard=False,
                     logging_level="WARNING", runtime_env=runtime_env or None)
        else:
            env = dict(runtime_env or {})
            env["env_vars"] = {**_docsynth_env(), **env.get("env_vars", {})}
            ray.init(address=address, logging_level="WARNING", runtime_env=env)
    except ConnectionError as exc:
        # Ray (2.5x) enables token authentication on new clusters but, for an explicit
        # HOST:PORT, only sends a token when RAY_AUTH_MODE=token is set.
        auth = ("" if address == "auto" or os.environ.get("RAY_AUTH_MODE") else
                "; a cluster with token authentication also needs RAY_AUTH_MODE=token and its "
                "token in ~/.ray/auth_token or RAY_AUTH_TOKEN")
        raise DocsynthError(
            f"executor ray: cannot connect to a Ray cluster at {address!r} ({exc}); start one with "
            "`ray start --head`, pass its HOST:PORT with --address, or leave --address out to "
            f"start a local Ray{auth}") from None
    return True


def _cause(err: Exception) -> BaseException:
    return getattr(err, "cause", None) or err


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}"


class RayExecutor:
    name = "ray"
    description = "Ray tasks on a local Ray (sized by --workers) or a cluster (--address auto|HOST:PORT)"
    options = OPTIONS

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], *, workers: int,
            initializer: Callable[..., None] | None = None, initargs: tuple = (),
            options: Options | None = None) -> Iterator[tuple[int, Any]]:
        options = options or build(self, {})  # a caller without options gets the defaults
        max_retries = options.max_retries
        cpus_per_task = float(options.cpus_per_task)
        runtime_env = options.runtime_env
        ray = _import_ray()
        if not tasks:
            return
        started = _connect(ray, options.address, workers, runtime_env)
        try:
            yield from self._run(ray, fn, tasks, initializer, initargs, max_retries, cpus_per_task,
                                 options.max_in_flight)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, fn, tasks, initializer, initargs, max_retries, cpus_per_task, max_in_flight):
        from ray.exceptions import RayError  # optional extra [ray]

        context = [ray.put(tuple(initargs)), os.getcwd()]  # shipped once; resolved once per worker
        # Retries are decided here rather than by Ray, so that user errors are not retried.
        remote = ray.remote(num_cpus=cpus_per_task, max_retries=0)(_run_task)
        if max_in_flight is None:
            max_in_flight = max(2, int(2 * ray.cluster_resources().get("CPU", 1) / max(cpus_per_task, 1e-3)))
        queue: deque[tuple[int, int]] = deque((i, 1) for i in range(len(tasks)))  # (task, attempt)
        pending: dict[Any, tuple[int, int]] = {}
        try:
            while queue or pending:
                while queue and len(pending) < max_in_flight:
                    i, attempt = queue.popleft()
                    pending[remote.remote(fn, initializer, context, tasks[i])] = (i, attempt)
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i, attempt = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except RayError as err:
                        cause = _cause(err)
                        if isinstance(cause, DocsynthError):
                            raise DocsynthError(str(cause), cause.exit_code) from None
                        if attempt > max_retries:
                            print(f"docsynth: ray task {i} failed {attempt} times; last error:\n{err}",
                                  file=sys.stderr)
                            raise DocsynthError(
                                f"executor ray: task {i} failed {attempt} times ({_one_line(cause)}); "
                                "rerun the same command to resume, finished shards are kept") from None
                        print(f"docsynth: ray task {i} failed ({_one_line(cause)}); "
                              f"retry {attempt}/{max_retries}", file=sys.stderr)
                        queue.append((i, attempt + 1))
                        continue
                    yield i, result
        finally:
            for ref in pending:  # interrupted or failed: do not leave work running on the cluster
                ray.cancel(ref, force=True)


@hookimpl
def register_executors(register):
    register(RayExecutor())
