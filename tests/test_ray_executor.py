"""The Ray executor on a local Ray instance: same bytes as the local executor, retries, resume,
context shipped once per worker process. Skipped when ray is not installed (CI installs the
``ray`` extra). Ray takes seconds to start, so one instance serves the whole module."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from helpers import generate_tiny, tree_bytes

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError

pytestmark = pytest.mark.slow  # starts Ray clusters: seconds per test (CI runs them; `-m "not slow"` skips them)



@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'docsynth[ray]'")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    # Task functions below live in this test module, which Ray workers cannot import.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


def run(out: str, **overrides) -> dict:
    return generate_tiny(out, 11, **{"count": 12, "per_document": 2, "shard_size": 3, **overrides})


def test_ray_output_is_byte_identical_to_local(ray_cluster):
    run("local", workers=1)
    summary = run("ray", executor="ray")
    assert summary["written"] == 12 and summary["failed"] == 0
    local, remote = tree_bytes(Path("local")), tree_bytes(Path("ray"))
    assert len(local) == 12 * 2 + 4 + 1 + 1  # images, masks, shard manifests, manifest.jsonl, shards/inputs.json
    assert local == remote


def test_ray_tar_shards_identical_to_local(ray_cluster):
    run("local", shard_format="tar", workers=2)
    run("ray", shard_format="tar", executor="ray")
    assert tree_bytes(Path("local")) == tree_bytes(Path("ray"))
    assert sorted(p.name for p in Path("ray/shards").glob("*.tar")) == [f"{k:05d}.tar" for k in range(4)]


def test_ray_resumes_a_half_finished_run(ray_cluster):
    run("ray", executor="ray")
    before = tree_bytes(Path("ray"))
    # Interrupted run: shards 1 and 3 never got their manifests, shard 3 lost an image too.
    for shard in (1, 3):
        Path(f"ray/shards/{shard:05d}.jsonl").unlink()
    Path("ray/images/0000010.jpg").unlink()
    Path("ray/manifest.jsonl").unlink()
    summary = run("ray", executor="ray")
    assert (summary["resumed"], summary["written"]) == (6, 6)
    assert tree_bytes(Path("ray")) == before


def test_cli_generate_with_ray_executor(ray_cluster, cli):
    Path("docsynth.yaml").write_text(
        "seed: 4\ngenerate:\n  documents_count: 2\n  backgrounds_count: 2\n  count: 4\n  shard_size: 2\n"
        "  source_options: {long_side: 100}\n  background_options: {size: [80, 60]}\n"
        "  compositor_options: {size: [48, 32]}\n")
    # ray is already initialised in this process, so --address is not dialled; it is recorded.
    result = cli("generate", "--executor", "ray", "--address", "auto", "-o", "d", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["samples"] == 4
    assert "address: auto" in Path("d/run.yaml").read_text()
    bad = cli("generate", "--address", "auto", "-o", "e")
    assert bad.exit_code != 0 and "--executor ray" in bad.stderr


# -- the executor contract, with task functions that misbehave on purpose -------------------------


def _record_init(folder: str) -> None:
    with Path(folder, "inits").open("a") as fh:  # one line per call
        fh.write(f"{os.getpid()}\n")


def _square(task: int) -> tuple[int, int]:
    return task * task, os.getpid()


def _flaky(task: tuple[str, int]) -> int:
    """Fails the first attempt of two tasks: an exception for 1, a dead worker for 3."""
    folder, i = task
    marker = Path(folder, f"tried-{i}")
    first = not marker.exists()
    marker.write_text("")
    if first and i == 1:
        raise OSError("shared filesystem hiccup")
    if first and i == 3:
        os._exit(1)
    return i * 10


def _always_fails(task: tuple[str, int]) -> int:
    folder, i = task
    Path(folder, f"try-{len(list(Path(folder).glob('try-*')))}").write_text("")
    raise ValueError("broken plugin")


def _user_error(task: tuple[str, int]) -> int:
    folder, i = task
    Path(folder, f"try-{len(list(Path(folder).glob('try-*')))}").write_text("")
    raise DocsynthError("docs/x.png: not a readable image", exit_code=3)


def built(options):
    """The executor's options as the host hands them over (checked, defaults filled)."""
    return options_mod.build(executor(), options, "generate.executor_options")


def executor():
    return plugins.get("executor", "ray")


def test_context_shipped_once_per_worker_process(ray_cluster, tmp_path):
    results = dict(executor().map(_square, list(range(10)), workers=2, initializer=_record_init,
                                  initargs=(str(tmp_path),)))
    assert {i: r[0] for i, r in results.items()} == {i: i * i for i in range(10)}
    worker_pids = {r[1] for r in results.values()}
    inits = (tmp_path / "inits").read_text().split()
    # One initialisation per worker process that ran tasks, not one per task.
    assert sorted(inits) == sorted(str(pid) for pid in worker_pids)


def test_failed_tasks_are_retried(ray_cluster, tmp_path, capfd):
    tasks = [(str(tmp_path), i) for i in range(4)]
    results = dict(executor().map(_flaky, tasks, workers=2, options=built({"max_retries": 2})))
    assert results == {0: 0, 1: 10, 2: 20, 3: 30}
    err = capfd.readouterr().err
    assert "ray task 1 failed (OSError: shared filesystem hiccup); retry 1/2" in err
    assert "ray task 3 failed" in err


def test_retries_are_bounded_and_user_errors_not_retried(ray_cluster, tmp_path):
    with pytest.raises(DocsynthError, match=r"task 0 failed 3 times \(ValueError: broken plugin\); rerun"):
        list(executor().map(_always_fails, [(str(tmp_path), 0)], workers=2, options=built({"max_retries": 2})))
    assert len(list(tmp_path.glob("try-*"))) == 3
    for p in tmp_path.glob("try-*"):
        p.unlink()
    with pytest.raises(DocsynthError, match="docs/x.png: not a readable image") as info:
        list(executor().map(_user_error, [(str(tmp_path), 0)], workers=2, options=built({"max_retries": 2})))
    assert info.value.exit_code == 3
    assert len(list(tmp_path.glob("try-*"))) == 1


def test_bad_options(ray_cluster):
    with pytest.raises(DocsynthError, match="unknown key 'generate.executor_options.adress'"):
        list(executor().map(_square, [1], workers=1, options=built({"adress": "auto"})))
    with pytest.raises(DocsynthError, match="'generate.executor_options.max_retries' is -1, expected an integer >= 0"):
        list(executor().map(_square, [1], workers=1, options=built({"max_retries": -1})))


def test_missing_ray_is_a_clear_error(monkeypatch):
    """Runs without ray installed too: the error names the extra to install."""
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(DocsynthError, match=r"pip install 'docsynth\[ray\]'"):
        list(executor().map(_square, [1], workers=1))
