"""`docsynth run`: skipping, reruns downstream of a changed key, resume, --from/--until/--force,
config problems reported before anything starts.

The real generate and split stages run on tiny images; train and evaluate are replaced by fast
stand-ins built with the same :class:`docsynth.run.engine.Stage` machinery (their real versions are
exercised by the end-to-end test at the bottom when torch-based stages are installed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers import built_backbone

from docsynth.errors import DocsynthError
from docsynth.run import checks as run_checks
from docsynth.run import runner as run_mod
from docsynth.run import stages as run_stages
from docsynth.run.engine import Stage, StageContext

BASE = {
    "seed": 7,
    "run": {"dir": "runs/t", "stages": ["generate", "split", "train", "evaluate"], "report": False},
    "generate": {"documents_count": 3, "backgrounds_count": 3, "per_document": 2, "shard_size": 2,
                 "compositor_options": {"size": [96, 72]}},
    "split": {"max_size": 64, "valid_fraction": 0.34},
    "train": {"epochs": 1},
}


def write_config(data: dict, path: str = "docsynth.yaml") -> Path:
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))
    return Path(path)


class Calls:
    """Fast stand-ins for train/evaluate that record when they run."""

    def __init__(self):
        self.log: list[str] = []

    def train(self, ctx: StageContext) -> dict:
        self.log.append("train")
        assert (ctx.inputs["split"] / "train" / "manifest.jsonl").is_file()
        rows = [{"epoch": e + 1, "loss": 1.0 / (e + 1)} for e in range(ctx.cfg.train.epochs)]
        (ctx.out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (ctx.out / "best.pt").write_bytes(b"weights")
        return {"epochs": len(rows)}

    def evaluate(self, ctx: StageContext) -> dict:
        self.log.append("evaluate")
        assert (ctx.inputs["train"] / "best.pt").is_file()
        (ctx.out / "results.json").write_text("{}")
        return {"jaccard": 0.5}


def stages_with(calls: Calls) -> dict[str, Stage]:
    stages = dict(run_stages.builtin_stages())
    no_paths = lambda cfg, out, inputs: {}  # noqa: E731
    stages["train"] = Stage("train", ("train",), calls.train, no_paths, "best.pt", reads=(("split",),), required=(0,))
    stages["evaluate"] = Stage("evaluate", ("evaluate",), calls.evaluate, no_paths, "results.json",
                               reads=(("train",),), required=(0,))
    return stages


def actions(summary: dict) -> dict[str, str]:
    return {e["stage"]: e["action"] for e in summary["stages"]}


def quiet(_msg: str) -> None:
    pass


def stop_training_in_epoch_two(monkeypatch):
    """The train stage stops during epoch 2 as Ctrl-C does (last.pt saved, the run returns);
    returns the real ``train`` to put back."""
    from docsynth.train import command

    real_train = command.train

    def stop_in_epoch_two(*args, **kwargs):
        def on_step(trainer):
            if trainer.state.epoch == 1:
                trainer._stop = True
        return real_train(*args, **kwargs, on_step=on_step)

    monkeypatch.setattr(command, "train", stop_in_epoch_two)
    return real_train


@pytest.mark.slow
def test_skip_when_unchanged_and_rerun_exactly_downstream_of_a_changed_key():
    calls = Calls()
    stages = stages_with(calls)
    cfg = write_config(BASE)
    first = run_mod.run(cfg, stages=stages, log=quiet)
    assert actions(first) == {"generate": "ran", "split": "ran", "train": "ran", "evaluate": "ran"}
    manifest = Path("runs/t/generate/manifest.jsonl").read_bytes()

    again = run_mod.run(cfg, stages=stages, log=quiet)
    assert set(actions(again).values()) == {"skipped"}
    assert calls.log == ["train", "evaluate"]

    # A key that does not change the output (worker count) reruns nothing.
    write_config({**BASE, "generate": {**BASE["generate"], "workers": 2}})
    assert set(actions(run_mod.run(cfg, stages=stages, log=quiet)).values()) == {"skipped"}

    # train.epochs: only train and evaluate
    write_config({**BASE, "train": {"epochs": 3}})
    third = run_mod.run(cfg, stages=stages, log=quiet)
    assert actions(third) == {"generate": "skipped", "split": "skipped", "train": "ran", "evaluate": "ran"}
    assert len(Path("runs/t/train/metrics.jsonl").read_text().splitlines()) == 3

    # split.max_size: split and everything after it, generate untouched
    write_config({**BASE, "train": {"epochs": 3}, "split": {**BASE["split"], "max_size": 48}})
    fourth = run_mod.run(cfg, stages=stages, log=quiet)
    assert actions(fourth) == {"generate": "skipped", "split": "ran", "train": "ran", "evaluate": "ran"}
    assert Path("runs/t/generate/manifest.jsonl").read_bytes() == manifest

    # the master seed feeds generate: everything reruns, and the old dataset is replaced
    write_config({**BASE, "seed": 8, "train": {"epochs": 3}, "split": {**BASE["split"], "max_size": 48}})
    fifth = run_mod.run(cfg, stages=stages, log=quiet)
    assert set(actions(fifth).values()) == {"ran"}
    assert Path("runs/t/generate/manifest.jsonl").read_bytes() != manifest


@pytest.mark.slow
def test_force_from_until():
    calls = Calls()
    stages = stages_with(calls)
    cfg = write_config(BASE)
    assert actions(run_mod.run(cfg, stages=stages, log=quiet, until="split")) == {
        "generate": "ran", "split": "ran", "train": "not selected", "evaluate": "not selected"}
    assert not Path("runs/t/train").exists()
    # --from train uses generate/split as they are
    assert actions(run_mod.run(cfg, stages=stages, log=quiet, start="train")) == {
        "generate": "not selected", "split": "not selected", "train": "ran", "evaluate": "ran"}
    # --force split reruns split and, since its output changed, train and evaluate
    forced = run_mod.run(cfg, stages=stages, log=quiet, force=["split"])
    assert actions(forced) == {"generate": "skipped", "split": "ran", "train": "ran", "evaluate": "ran"}
    # --from/--until select a range; up-to-date stages in it are still skipped
    assert actions(run_mod.run(cfg, stages=stages, log=quiet, start="split", until="train")) == {
        "generate": "not selected", "split": "skipped", "train": "skipped", "evaluate": "not selected"}


def test_from_needs_completed_upstream():
    stages = stages_with(Calls())
    cfg = write_config(BASE)
    with pytest.raises(DocsynthError, match="--from train needs the output of split"):
        run_mod.run(cfg, stages=stages, log=quiet, start="train")


def test_all_config_problems_reported_before_any_stage_starts():
    calls = Calls()
    stages = stages_with(calls)
    text = """\
seed: 1
run:
  dir: runs/bad
  stages: [generate, split, traing, evaluate]
generate:
  per_document: 0
  compositor: no-such-compositor
  workers: many
  colour: blue
split:
  valid_fraction: 1.5
train:
  epochs: ten
"""
    Path("bad.yaml").write_text(text)
    with pytest.raises(DocsynthError) as info:
        run_mod.run("bad.yaml", stages=stages, log=quiet, force=["nothing"])
    lines = str(info.value).splitlines()
    expected = {
        "bad.yaml:8:": "generate.workers",  # wrong type
        "bad.yaml:9:": "generate.colour",  # unknown key
        "bad.yaml:13:": "train.epochs",  # wrong type
        "bad.yaml:4:": "traing",  # unknown stage
        "bad.yaml:6:": "per_document",  # out of range
        "bad.yaml:7:": "no-such-compositor",  # unknown plugin
        "bad.yaml:11:": "valid_fraction",
        "--force nothing": "not a stage",
    }
    for prefix, word in expected.items():
        assert any(line.startswith(prefix) and word in line for line in lines), (prefix, word, lines)
    assert calls.log == [] and not Path("runs/bad").exists()


def test_cli_reports_problems_on_stderr_without_traceback(cli):
    write_config({**BASE, "run": {"dir": "runs/c", "stages": ["split", "generate"]}, "train": {"epochs": "x"}})
    result = cli("run")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    errors = [s for s in result.stderr.splitlines() if s.startswith("docsynth: error:")]
    assert len(errors) == 2 and "pipeline order" in result.stderr and "train.epochs" in result.stderr
    assert not Path("runs/c").exists()


@pytest.mark.slow
def test_interrupted_generate_resumes_and_finished_shards_are_kept():
    stages = stages_with(Calls())
    cfg = write_config({**BASE, "run": {**BASE["run"], "stages": ["generate", "split"]}})

    class Bar:
        """Interrupts generate after its first shard, like Ctrl-C would."""

        def __init__(self, label):
            self.label = label

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def start(self, total, done=0):
            self.done = done

        def advance(self, n=1):
            if self.label == "generate":
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_mod.run(cfg, stages=stages, log=quiet, bars=Bar)
    record = json.loads(Path("runs/t/generate/.stage.json").read_text())
    assert record["status"] == "interrupted"
    shards = sorted(p.name for p in Path("runs/t/generate/shards").glob("*.jsonl"))
    assert shards == ["00000.jsonl"]
    first_shard = Path("runs/t/generate/shards/00000.jsonl").read_bytes()

    summary = run_mod.run(cfg, stages=stages, log=quiet)
    assert actions(summary)["generate"] == "resumed"
    gen = summary["stages"][0]["summary"]
    assert gen["resumed"] == 2 and gen["written"] == 4 and gen["samples"] == 6
    assert Path("runs/t/generate/shards/00000.jsonl").read_bytes() == first_shard
    record = json.loads(Path("runs/t/generate/.stage.json").read_text())
    assert record["status"] == "complete"
    assert [a["outcome"] for a in record["attempts"]] == ["interrupted", "complete"]


def test_interrupted_stage_resumes_on_its_own_files():
    state = {"fail": True}

    def flaky(ctx: StageContext) -> dict:
        part = ctx.out / "part1"
        if ctx.resume:
            assert part.read_text() == "kept"
        part.write_text("kept")
        if state["fail"]:
            raise RuntimeError("disk on fire")
        (ctx.out / "done").write_text("ok")
        return {"resumed": ctx.resume}

    stages = {"generate": Stage("generate", ("generate",), flaky, lambda c, o, i: {}, "done")}
    cfg = write_config({"run": {"dir": "r", "stages": ["generate"], "report": False}})
    with pytest.raises(RuntimeError):
        run_mod.run(cfg, stages=stages, log=quiet)
    assert json.loads(Path("r/generate/.stage.json").read_text())["status"] == "failed"
    state["fail"] = False
    summary = run_mod.run(cfg, stages=stages, log=quiet)
    assert summary["stages"][0]["action"] == "resumed" and summary["stages"][0]["summary"] == {"resumed": True}
    # deleting the stage's output makes it stale: it starts over on an emptied folder
    Path("r/generate/done").unlink()
    Path("r/generate/junk").write_text("x")
    again = run_mod.run(cfg, stages=stages, log=quiet)
    assert again["stages"][0]["action"] == "ran" and not Path("r/generate/junk").exists()


def test_refuses_a_stage_folder_it_did_not_make():
    stages = stages_with(Calls())
    cfg = write_config({**BASE, "run": {**BASE["run"], "stages": ["generate"]}})
    Path("runs/t/generate").mkdir(parents=True)
    Path("runs/t/generate/mine.txt").write_text("user data")
    with pytest.raises(DocsynthError, match="not made by `docsynth run`"):
        run_mod.run(cfg, stages=stages, log=quiet)
    assert Path("runs/t/generate/mine.txt").read_text() == "user data"


def test_second_run_on_the_same_folder_is_refused_while_one_is_alive():
    Path("runs/t").mkdir(parents=True)
    Path("runs/t/.lock").write_text("1")  # pid 1 is always alive
    cfg = write_config({**BASE, "run": {**BASE["run"], "stages": ["generate"]}})
    with pytest.raises(DocsynthError, match="another `docsynth run`"):
        run_mod.run(cfg, stages=stages_with(Calls()), log=quiet)
    Path("runs/t/.lock").write_text("999999999")  # a dead run's lock is taken over
    assert actions(run_mod.run(cfg, stages=stages_with(Calls()), log=quiet))["generate"] == "ran"
    assert not Path("runs/t/.lock").exists()


@pytest.mark.slow
def test_cli_run_json_and_report(cli):
    write_config({**BASE, "run": {"dir": "runs/j", "stages": ["generate", "split"]}})
    result = cli("run", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [e["action"] for e in summary["stages"][:2]] == ["ran", "ran"]
    assert Path(summary["report"]).is_file()
    assert json.loads(cli("run", "--json").stdout)["stages"][0]["action"] == "skipped"


def test_repository_example_config_is_complete_and_valid():
    """The docsynth.yaml README's quick start runs: all six stages, offline plugins, no problem."""
    example = Path(__file__).resolve().parent.parent / "docsynth.yaml"
    loaded = run_checks.load_config(example)
    assert run_checks.check(loaded, run_stages.STAGES) == []
    assert loaded.cfg["run"]["stages"] == list(run_mod.STAGE_ORDER)
    assert set(loaded.cfg["sources"]["mix"]) == {"procedural"}
    assert loaded.cfg["backgrounds"]["provider"] == "procedural"


TINY_REAL = {
    "seed": 5,
    "run": {"dir": "runs/e2e", "report": True},  # all six stages
    "sources": {"mix": {"procedural": 4}, "max_size": 160},
    "backgrounds": {"provider": "procedural", "count": 3, "options": {"procedural": {"size": [160, 120]}}},
    "generate": {"per_document": 3, "compositor": "homography", "compositor_options": {"size": [64, 48]}},
    "split": {"max_size": 48, "valid_fraction": 0.25},
    "train": {"backbone": "compact", "epochs": 1, "input_size": 32, "batch_size": 4, "workers": 0,
              "steps_per_epoch": 2, "lr": 0.002},
    "evaluate": {"baseline": "classical", "worst": 2, "packaged": True},
}


@pytest.mark.slow
def test_whole_run_with_the_real_stages_then_train_epochs_reruns_only_train_and_evaluate(monkeypatch):
    pytest.importorskip("torch")
    from docsynth.train import command

    cfg = write_config(TINY_REAL)
    first = run_mod.run(cfg, log=quiet)
    assert set(actions(first).values()) == {"ran"}
    run_dir = Path("runs/e2e")
    for stage, output in (("sources", "documents.jsonl"), ("backgrounds", "backgrounds.jsonl"),
                          ("generate", "manifest.jsonl"), ("split", "split.yaml"), ("train", "best.pt"),
                          ("evaluate", "results.json")):
        assert (run_dir / stage / output).is_file(), stage
    results = json.loads((run_dir / "evaluate" / "results.json").read_text())
    assert list(results["methods"]) == ["model:refine", "classical", "packaged:refine"]
    assert "held-out synthetic" in results["note"]
    scores = {name: m["mean_jaccard"] for name, m in results["methods"].items()}
    assert all(m["count"] == results["methods"]["classical"]["count"] for m in results["methods"].values())
    assert results["packaged"]["backbone"] == "compact_corners" and results["packaged"]["epochs"] > 2
    page = (run_dir / "report.html").read_text()
    assert "did not" not in page and "not part of this run" not in page  # every stage has its section
    # One sentence, in the report and in the run's summary: why the 2-step model is far below
    # the packaged one (what it was trained on, for how long) and what the packaged one scores.
    assert scores["packaged:refine"] > scores["model:refine"]
    remark = first["remark"]
    assert remark.startswith(f"The run's own model scores {scores['model:refine']:.3f} because it is a quick example")
    assert "1 epoch (2 steps) of the compact model from scratch on " in remark and "composites of 4 pages" in remark
    from docsynth.scan.packaged import facts

    epochs = facts()["epochs"]  # the packaged checkpoint's own record
    assert f"the packaged model ({epochs} epochs" in remark and f"scores {scores['packaged:refine']:.3f}" in remark
    assert remark.count(". ") == 0 and remark.endswith(".")  # one sentence
    import html
    assert html.escape(remark) in page

    # train.epochs 1 -> 2, interrupted during epoch 2 (as Ctrl-C does: last.pt saved, run returns)
    real_train = stop_training_in_epoch_two(monkeypatch)
    write_config({**TINY_REAL, "train": {**TINY_REAL["train"], "epochs": 2}})
    with pytest.raises(KeyboardInterrupt):
        run_mod.run(cfg, log=quiet)
    assert json.loads((run_dir / "train" / ".stage.json").read_text())["status"] == "interrupted"
    assert len((run_dir / "train" / "metrics.jsonl").read_text().splitlines()) == 1

    monkeypatch.setattr(command, "train", real_train)
    resumed = run_mod.run(cfg, log=quiet)
    assert actions(resumed) == {"sources": "skipped", "backgrounds": "skipped", "generate": "skipped",
                                "split": "skipped", "train": "resumed", "evaluate": "ran"}
    assert len((run_dir / "train" / "metrics.jsonl").read_text().splitlines()) == 2


def test_keys_an_upstream_stage_makes_irrelevant_rerun_nothing():
    """With a sources stage, generate.source/documents_count do not matter: editing them is free."""
    ran = []

    def prepare_stub(ctx: StageContext) -> dict:
        ran.append("sources")
        (ctx.out / "documents.jsonl").write_text("")
        return {}

    def generate_stub(ctx: StageContext) -> dict:
        ran.append("generate")
        assert ctx.cfg.generate.documents == str(ctx.inputs["sources"])
        (ctx.out / "manifest.jsonl").write_text("")
        return {}

    builtin = run_stages.builtin_stages()
    stages = {"sources": Stage("sources", ("seed", "sources"), prepare_stub, builtin["sources"].configure,
                               "documents.jsonl"),
              "generate": Stage("generate", ("seed", "generate"), generate_stub, builtin["generate"].configure,
                                "manifest.jsonl", reads=(("sources",), ("backgrounds",)))}
    base = {"run": {"dir": "r", "stages": ["sources", "generate"], "report": False}}
    cfg = write_config(base)
    run_mod.run(cfg, stages=stages, log=quiet)
    write_config({**base, "generate": {"documents_count": 99, "source": "folder"}})
    assert set(actions(run_mod.run(cfg, stages=stages, log=quiet)).values()) == {"skipped"}
    write_config({**base, "generate": {"per_document": 9}})
    assert actions(run_mod.run(cfg, stages=stages, log=quiet)) == {"sources": "skipped", "generate": "ran"}
    assert ran == ["sources", "generate", "generate"]
    with pytest.raises(DocsynthError, match="--force sources: outside"):
        run_mod.run(cfg, stages=stages, log=quiet, start="generate", force=["sources"])


def test_sources_mix_may_name_an_alias_of_a_source(cli, tmp_path):
    import cv2
    import numpy as np

    (tmp_path / "pages").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "pages" / f"p{i}.png"), np.full((100, 80, 3), 240, np.uint8))
    (tmp_path / "docsynth.yaml").write_text(
        "run: {dir: r, stages: [sources]}\n"
        "sources:\n  mix: {scans: 2}\n  options: {scans: {source: folder, root: pages}}\n")
    result = cli("run", "--json")
    assert result.exit_code == 0, result.stderr
    rows = (tmp_path / "r" / "sources" / "documents.jsonl").read_text().splitlines()
    assert len(rows) == 2


@pytest.mark.slow
def test_run_fine_tunes_the_packaged_model_refuses_another_architecture_and_resumes(monkeypatch, cli):
    """train.weights: packaged in a run: a backbone other than the packaged model's is one line
    with file and line before any stage; with its architecture, training starts from its
    weights (lr 0 keeps them), is interrupted, resumes from last.pt, and evaluate scores it
    beside the packaged model."""
    torch = pytest.importorskip("torch")
    from docsynth.train import command

    tiny = {**TINY_REAL, "run": {"dir": "runs/ft", "report": True,
                                 "stages": ["generate", "split", "train", "evaluate"]},
            "train": {**TINY_REAL["train"], "weights": "packaged", "epochs": 2}}
    cfg = write_config(tiny)
    refused = cli("run")
    assert refused.exit_code == 2 and "Traceback" not in refused.stderr
    errors = [line for line in refused.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "docsynth.yaml:" in errors[0] and "'train.weights' is 'packaged'" in errors[0]
    assert "train.backbone: compact_corners" in errors[0] and not Path("runs/ft").exists()

    tiny["train"].update(backbone="compact_corners", backbone_options={"width": 1.25, "decoder": 40}, lr=0.0)
    write_config(tiny)
    real_train = stop_training_in_epoch_two(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_mod.run(cfg, log=quiet)
    monkeypatch.setattr(command, "train", real_train)
    resumed = run_mod.run(cfg, log=quiet)
    assert actions(resumed)["train"] == "resumed" and actions(resumed)["evaluate"] == "ran"
    run_dir = Path("runs/ft")
    assert len((run_dir / "train" / "metrics.jsonl").read_text().splitlines()) == 2
    from docsynth.scan.scanner import PACKAGED_MODEL

    packaged = torch.load(PACKAGED_MODEL, map_location="cpu", weights_only=False)["model"]
    trained = torch.load(run_dir / "train" / "best.pt", map_location="cpu", weights_only=False)
    assert trained["config"]["train"]["weights"] == "packaged"
    params = {name for name, _ in built_backbone("compact_corners", "none",
                                                 {"width": 1.25, "decoder": 40}).named_parameters()}
    for name in params:  # lr 0: the weights are the packaged model's (BatchNorm statistics move)
        assert torch.equal(trained["model"][name].float(), packaged[name].float()), name
    results = json.loads((run_dir / "evaluate" / "results.json").read_text())
    assert set(results["methods"]) == {"model:refine", "classical", "packaged:refine"}
    assert "fine-tuning the packaged model" in resumed["remark"]


def test_packaged_options_without_a_packaged_model_are_reported_before_any_stage(monkeypatch, tmp_path):
    import docsynth.scan.scanner

    monkeypatch.setattr(docsynth.scan.scanner, "PACKAGED_MODEL", tmp_path / "absent" / "docsynth-cpu.pt")
    cfg = write_config({**TINY_REAL, "train": {**TINY_REAL["train"], "weights": "packaged"}})
    with pytest.raises(DocsynthError) as err:
        run_mod.run(cfg, log=quiet)
    lines = str(err.value).splitlines()
    assert any(line.startswith("docsynth.yaml:") and "'train.weights' is 'packaged' but this install has no "
               "packaged checkpoint" in line for line in lines), lines
    assert any("'evaluate.packaged' is true but no packaged model is installed" in line for line in lines), lines
    assert not Path("runs/e2e").exists()
