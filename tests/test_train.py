"""docsynth train: backbones, losses, checkpoints, exact resume, metrics/curves, weights files.

Everything runs at 64 px with batches of 4 on a 15-image dataset, so each run takes seconds.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import built_backbone
from train_data import make_dataset, make_realdocs

from docsynth import config, plugins
from docsynth import options as options_mod
from docsynth.errors import DocsynthError
from docsynth.io import read_image, read_jsonl

pytestmark = pytest.mark.slow  # trains or exports models: minutes in all (CI runs it; `-m "not slow"` skips it)

BACKBONES = ["mobilenet_v3_large", "resnet50", "lraspp_mobilenet_v3_large"]


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine two threads spin against other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cfg(**train) -> dict:
    base = {"input_size": 64, "batch_size": 4, "workers": 0, "epochs": 2, "threads": 1, "out": "run"}
    base.update(train)
    return config.load(None, {f"train.{k}": v for k, v in base.items()})


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def _batch(n: int = 4, size: int = 64) -> dict:
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(n, size, size, dtype=torch.int64)
    mask[:, 16:48, 20:44] = 1
    image = torch.randn(n, 3, size, size, generator=g) * 0.3 + mask[:, None].float()
    corners = torch.tensor([[20, 16], [44, 16], [44, 48], [20, 48]], dtype=torch.float32)[None].repeat(n, 1, 1) / size
    return {"image": image, "mask": mask, "corners": corners, "has_corners": torch.ones(n, dtype=torch.bool)}


@pytest.mark.parametrize("name", BACKBONES)
def test_backbones_build_and_follow_the_output_contract(name):
    model = built_backbone(name, "none", {})
    x = torch.randn(2, 3, 64, 64)
    model.train()
    out = model(x)
    assert out["out"].shape == (2, 2, 64, 64)
    assert ("aux" in out) == (name != "lraspp_mobilenet_v3_large")
    model.eval()
    with torch.no_grad():
        assert set(model(x[:1])) == {"out"}  # the auxiliary head is skipped at inference


def test_a_training_step_lowers_the_loss_on_a_fixed_batch():
    from docsynth.train.losses import total_loss

    torch.manual_seed(0)
    model = built_backbone("lraspp_mobilenet_v3_large", "none", {})
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch, tcfg = _batch(), config.RunConfig().train
    losses = []
    for _ in range(6):
        loss, parts = total_loss(model(batch["image"]), batch, tcfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.05, losses


def test_corner_targets_peak_where_the_corners_are():
    from docsynth.scan.model_contract import decode_corners
    from docsynth.train.losses import corner_loss, corner_targets

    corners = torch.tensor([[[0.2, 0.25], [0.8, 0.2], [0.75, 0.9], [0.1, 0.7]]])
    target = corner_targets(corners, 32, 48, sigma=1.5)
    assert target.shape == (1, 4, 32, 48) and float(target.max()) <= 1.0
    logits = torch.logit(target.clamp(1e-4, 1 - 1e-4))[0].numpy()
    decoded, _ = decode_corners(logits, 48, 32)
    assert np.allclose(decoded / (48, 32), corners[0].numpy(), atol=0.02)  # within 2/3 cell
    # the loss prefers the right heatmap, and ignores samples without corners
    good = corner_loss(torch.from_numpy(logits)[None], corners, torch.tensor([True]), 1.5)
    bad = corner_loss(torch.zeros(1, 4, 32, 48), corners, torch.tensor([True]), 1.5)
    assert float(good) < float(bad)
    assert float(corner_loss(torch.zeros(1, 4, 32, 48), corners, torch.tensor([False]), 1.5)) == 0.0


def test_iou_metric_is_mean_over_both_classes_of_the_argmax():
    from docsynth.train.metrics import mean_iou_per_image

    target = torch.zeros(1, 4, 4, dtype=torch.int64)
    target[0, :2] = 1  # top half is page
    logits = torch.zeros(1, 2, 4, 4)
    logits[0, 1, :1] = 1  # predicts the top quarter as page
    # page IoU 4/8, background IoU 8/12
    assert abs(float(mean_iou_per_image(logits, target)[0]) - (0.5 + 8 / 12) / 2) < 1e-6


def test_train_writes_metrics_curves_and_loadable_checkpoints(tmp_path):
    from docsynth.scan.model_contract import load_model, predict
    from docsynth.train.command import train

    make_dataset(tmp_path / "ds", documents=5, per_document=3)
    make_realdocs(tmp_path / "real")
    cfg = _cfg(backbone="lraspp_mobilenet_v3_large", eval_real=str(tmp_path / "real"))
    summary = train(cfg, data="ds")
    run = tmp_path / "run"
    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2] and rows[-1] == summary["last"]
    for key in ("train_loss", "valid_loss", "valid_iou", "real_iou", "seconds", "train_cpu_seconds",
                "train_wall_seconds"):
        assert all(isinstance(r[key], float) for r in rows), key
    assert rows[1]["train_wall_seconds"] > rows[0]["train_wall_seconds"]
    curves = read_image(run / "curves.png")
    assert curves.shape[0] > 100
    from docsynth.viz import COLOURS, bgr

    colour = np.array(bgr(COLOURS[0]))  # the loss panel's first series: train loss
    assert (np.abs(curves[:, :480].astype(int) - colour).sum(axis=2) < 30).sum() > 50  # the train-loss line is drawn

    model, ckpt = load_model(run / "best.pt")
    assert ckpt["backbone"] == "lraspp_mobilenet_v3_large" and ckpt["input_size"] == 64
    assert ckpt["epoch"] == ckpt["metrics"]["epoch"] == summary["best_epoch"]
    for key in ("optimizer", "scheduler", "rng", "config", "run_state"):
        assert key in ckpt
    last_model, last = load_model(run / "last.pt")
    saved = last["model"]
    assert all(torch.equal(v, saved[k]) for k, v in last_model.state_dict().items())
    pred = predict(last_model, last, read_image(tmp_path / "real" / "images" / "photo0.jpg"))
    assert pred.page_prob.shape == (90, 120)


def _stop_at(step: int, how: str):
    def hook(trainer):
        if trainer.state.step == step:
            if how == "sigint":
                os.kill(os.getpid(), signal.SIGINT)  # the real Ctrl-C path
            else:
                raise RuntimeError("simulated crash")
    return hook


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    """Ctrl-C mid-epoch, then a crash after periodic checkpoints, then the rest: same weights,
    same losses as one uninterrupted run. DeepLabV3 has dropout, so the RNG state matters;
    the resumed sessions use 2 DataLoader workers, the reference none."""
    from docsynth.train.command import train

    # 4 documents x 3: 9 training images = 2 steps of 4 per epoch, at 32 px
    make_dataset(tmp_path / "ds", documents=4, per_document=3)
    common = dict(backbone="mobilenet_v3_large", schedule="cosine", warmup_steps=1, input_size=32, epochs=2)
    ref = train(_cfg(out="a", **common), data="ds")
    assert ref["steps"] == 4 and not ref["interrupted"]

    cfg = _cfg(out="b", workers=2, checkpoint_minutes=0.0, **common)
    first = train(cfg, data="ds", on_step=_stop_at(1, "sigint"))
    assert first["interrupted"] and first["steps"] == 1 and first["epochs_done"] == 0
    assert _state(tmp_path / "b" / "last.pt")["run_state"]["micro"] == 1
    # periodic checkpoints after every step (checkpoint_minutes tiny), then a crash at step 4
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(None, resume="b", overrides={"train.checkpoint_minutes": 1e-9}, on_step=_stop_at(4, "crash"))
    assert _state(tmp_path / "b" / "last.pt")["run_state"]["step"] == 3  # mid-epoch 2
    done = train(None, resume="b")
    assert done["steps"] == 4 and not done["interrupted"]

    a, b = _state(tmp_path / "a" / "last.pt"), _state(tmp_path / "b" / "last.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    strip = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert strip(read_jsonl(tmp_path / "a" / "metrics.jsonl")) == strip(read_jsonl(tmp_path / "b" / "metrics.jsonl"))
    assert a["scheduler"] == b["scheduler"]


def test_cli_train_refuses_to_overwrite_and_resume_checks_config(cli, tmp_path):
    make_dataset(tmp_path / "ds", documents=4, per_document=3)
    (tmp_path / "docsynth.yaml").write_text(
        "train:\n  input_size: 32\n  batch_size: 4\n  workers: 0\n  threads: 1\n")
    args = ("train", "ds", "--backbone", "lraspp_mobilenet_v3_large", "--epochs", "1", "--out", "run")
    res = cli(*args, "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["epochs_done"] == 1
    again = cli(*args)
    assert again.exit_code != 0 and "--resume run" in again.stderr
    more = cli("train", "--resume", "run", "--epochs", "2", "--json")
    assert more.exit_code == 0, more.stderr
    assert json.loads(more.stdout)["epochs_done"] == 2 and len(read_jsonl(tmp_path / "run" / "metrics.jsonl")) == 2
    bad = cli("train", "--resume", "run", "--backbone", "resnet50")
    assert bad.exit_code != 0 and "train.backbone" in bad.stderr
    missing = cli("train", "nowhere", "--out", "x")
    assert missing.exit_code != 0 and "nowhere: dataset folder not found" in missing.stderr


def test_weights_from_a_local_file(tmp_path):
    torch.manual_seed(1)
    backbone = plugins.get("backbone", "lraspp_mobilenet_v3_large")
    source = backbone.build(2, "none", options_mod.build(backbone, {}))
    torch.save({"state_dict": source.state_dict()}, tmp_path / "w.pth")
    loaded = backbone.build(2, str(tmp_path / "w.pth"), options_mod.build(backbone, {}))
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in source.state_dict().items())
    with pytest.raises(DocsynthError, match="weights file not found"):
        backbone.build(2, str(tmp_path / "nope.pth"), options_mod.build(backbone, {}))
    torch.save({"x": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(DocsynthError, match="another backbone"):
        backbone.build(2, str(tmp_path / "other.pth"), options_mod.build(backbone, {}))


def test_pretrained_weights_come_from_the_torch_hub_cache_only(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    lraspp = plugins.get("backbone", "lraspp_mobilenet_v3_large")
    with pytest.raises(DocsynthError) as err:
        lraspp.build(2, "imagenet", options_mod.build(lraspp, {}))
    message = str(err.value)
    assert str(cache / "mobilenet_v3_large-8738ca79.pth") in message and "download.pytorch.org" in message
    with pytest.raises(DocsynthError, match="deeplabv3_resnet50_coco-cd0a2569.pth"):
        built_backbone("resnet50", "coco", {})
    # a corrupt file in the cache is named as such
    cache.mkdir(parents=True)
    (cache / "mobilenet_v3_large-8738ca79.pth").write_bytes(b"not a weights file")
    with pytest.raises(DocsynthError, match="not usable as 'imagenet' weights"):
        lraspp.build(2, "imagenet", options_mod.build(lraspp, {}))
    # a real (here: random) ImageNet MobileNetV3 state dict in the cache is used for the backbone
    torch.manual_seed(3)
    classifier = torchvision.models.mobilenet_v3_large()
    torch.save(classifier.state_dict(), cache / "mobilenet_v3_large-8738ca79.pth")
    model = lraspp.build(2, "imagenet", options_mod.build(lraspp, {}))
    first = classifier.features[0][0].weight
    assert torch.equal(model.backbone["0"][0].weight, first)


def test_samplers_shard_global_batches_and_balance_bins():
    from docsynth.train.data import EpochSampler, balanced_weights

    data = list(range(20))
    single = EpochSampler(data, batch_size=4, micro_batches=5, seed=7)
    single.set_epoch(3)
    keys = [k for _, k in single]
    ranks = [EpochSampler(data, batch_size=4, micro_batches=5, seed=7, num_replicas=2, rank=r) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(3)
    per_rank = [[k for _, k in s] for s in ranks]
    for b in range(5):  # global batch b holds the same samples in both layouts
        assert sorted(keys[4 * b:4 * b + 4]) == sorted(per_rank[0][2 * b:2 * b + 2] + per_rank[1][2 * b:2 * b + 2])
    single.set_start(2)
    assert [k for _, k in single] == keys[8:]
    weights = balanced_weights(np.array([0.0, 0.5, 0.5, 0.5, 0.05]))
    assert np.isclose(weights[0], 1) and np.isclose(weights[1], 1 / 3)


def test_online_training_resumes_exactly_whatever_the_worker_count(tmp_path):
    """--online: fresh composites from OnlineDataset (procedural pages and backgrounds);
    validation is a fixed seeded set of online samples."""
    from docsynth.train.command import train

    (tmp_path / "docsynth.yaml").write_text(
        "generate:\n  documents_count: 3\n  backgrounds_count: 3\n"
        "  source_options: {long_side: 240}\n  background_options: {size: [160, 120]}\n"
        "  compositor_options: {size: [96, 128]}\n"
        "train:\n  online: true\n  online_options: {samples_per_epoch: 8, valid_samples: 4}\n")

    def cfg(out, workers):
        return config.load(None, {"train.out": out, "train.workers": workers, "train.input_size": 32,
                                  "train.batch_size": 4, "train.epochs": 2, "train.threads": 1,
                                  "train.backbone": "lraspp_mobilenet_v3_large"})

    ref = train(cfg("a", 0))
    assert ref["steps"] == 4
    first = train(cfg("b", 2), on_step=_stop_at(3, "sigint"))
    assert first["interrupted"] and first["steps"] == 3
    train(None, resume="b")
    a, b = _state(tmp_path / "a" / "last.pt"), _state(tmp_path / "b" / "last.pt")
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())
    assert a["run_state"]["history"][-1]["valid_iou"] == b["run_state"]["history"][-1]["valid_iou"]


def test_split_folder_with_accumulation_balance_channels_last_and_early_stopping(tmp_path):
    """A split folder as DATA; 2 micro-batches per step; balanced sampling; lr 0 so the
    validation IoU never improves and early stopping ends the run after 1 + 1 epochs."""
    from docsynth.dataset.split import split
    from docsynth.train.command import train

    make_dataset(tmp_path / "ds", documents=5, per_document=4)
    split(tmp_path / "ds", tmp_path / "sp", seed=1, valid_fraction=0.2, max_size=0)
    cfg = _cfg(backbone="lraspp_mobilenet_v3_large", input_size=32, epochs=5, accumulate=2, balanced=True,
               channels_last=True, early_stopping=1, lr=0.0, bn_momentum=0.2)
    momenta = set()

    def look(trainer):
        momenta.update(m.momentum for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d))

    summary = train(cfg, data="sp", on_step=look)
    assert momenta == {0.2}  # torchvision's MobileNetV3 default is 0.01
    assert summary["stopped_early"] and summary["epochs_done"] == 2
    assert summary["steps"] == 2 * (16 // 4 // 2)  # 16 training images, batch 4, 2 micro-batches per step
    assert len(read_jsonl(tmp_path / "run" / "metrics.jsonl")) == 2


def test_real_eval_scores_smartdoc_jaccard_of_the_scanned_quad(tmp_path):
    """An oracle 'model' that thresholds brightness finds the bright page of each photo: the
    per-epoch real-photo Jaccard (scan post-processor + SmartDoc protocol) is then near 1, and a
    model that sees no page scores 0."""
    import torch

    from docsynth.scan.model_contract import REFERENCE_MEAN, REFERENCE_STD
    from docsynth.train.realeval import RealEval

    class Bright(torch.nn.Module):
        def __init__(self, sees: bool):
            super().__init__()
            self.sees = sees

        def forward(self, x):
            grey = x.mean(dim=1, keepdim=True)
            page = 20 * (grey - 0.8)  # the page is far brighter than the noise
            if not self.sees:
                page = torch.full_like(page, -10.0)
            return {"out": torch.cat([-page, page], dim=1)}

    make_realdocs(tmp_path / "real")
    real = RealEval(tmp_path / "real")
    meta = {"input_size": 64, "mean": REFERENCE_MEAN, "std": REFERENCE_STD}
    good = real.evaluate(Bright(True), meta, torch.device("cpu"))
    assert good["real_jaccard"] > 0.9 and good["real_iou"] > 0.9
    blind = real.evaluate(Bright(False), meta, torch.device("cpu"))
    assert blind["real_jaccard"] == 0.0


def test_cyclic_corner_order_accepts_any_clockwise_start_only():
    import torch

    from docsynth.train.losses import corner_loss, corner_targets

    corners = torch.tensor([[[0.2, 0.2], [0.8, 0.25], [0.75, 0.8], [0.25, 0.75]]])
    has = torch.tensor([True])
    target = corner_targets(corners, 32, 32, sigma=1.5)
    logits = torch.logit(target.clamp(1e-4, 1 - 1e-4))
    started_elsewhere = torch.roll(logits, 1, dims=1)  # the same quad, labelled from the next corner
    mirrored = logits[:, [0, 3, 2, 1]]  # counter-clockwise: not the same labelling
    exact = float(corner_loss(logits, corners, has, 1.5, order="cyclic"))
    assert abs(float(corner_loss(started_elsewhere, corners, has, 1.5, order="cyclic")) - exact) < 1e-6
    assert float(corner_loss(started_elsewhere, corners, has, 1.5)) > exact + 0.01  # fixed order punishes it
    assert float(corner_loss(mirrored, corners, has, 1.5, order="cyclic")) > exact + 0.01


PACKAGED_ARCH = {"backbone": "compact_corners", "backbone_options": {"width": 1.25, "decoder": 40}}


def test_packaged_weights_fine_tune_resume_exactly_and_refuse_another_architecture(tmp_path, cli):
    """train.weights: packaged starts from docsynth-cpu.pt (lr 0 keeps its weights), an
    interrupted fine-tune resumes to the same weights as an uninterrupted one, and another
    backbone or other backbone options are refused in one line before anything is written."""
    from docsynth.scan.scanner import PACKAGED_MODEL
    from docsynth.train.command import train

    make_dataset(tmp_path / "ds", documents=4, per_document=3)  # 9 training images: 2 steps of 4
    packaged = _state(PACKAGED_MODEL)["model"]
    frozen = train(_cfg(out="frozen", weights="packaged", lr=0.0, epochs=1, **PACKAGED_ARCH), data="ds")
    assert frozen["steps"] == 2
    params = dict(built_backbone("compact_corners", "none", PACKAGED_ARCH["backbone_options"])
                  .named_parameters())
    model = _state(tmp_path / "frozen" / "best.pt")["model"]
    assert all(torch.equal(model[k].float(), packaged[k].float()) for k in params)

    common = dict(weights="packaged", schedule="cosine", epochs=2, lr=0.002, **PACKAGED_ARCH)
    ref = train(_cfg(out="a", **common), data="ds")
    first = train(_cfg(out="b", checkpoint_minutes=0.0, **common), data="ds", on_step=_stop_at(1, "sigint"))
    assert first["interrupted"] and first["steps"] == 1
    done = train(None, resume="b")
    assert done["steps"] == ref["steps"] == 4 and not done["interrupted"]
    a, b = _state(tmp_path / "a" / "last.pt")["model"], _state(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.equal(v, b[k]) for k, v in a.items())
    assert not all(torch.equal(a[k].float(), packaged[k].float()) for k in params)  # it did learn

    for flags, needle in ((["--backbone", "compact"], "train.backbone is 'compact'"),
                          (["--backbone", "compact_corners"], "backbone_options {} build another")):
        result = cli("train", "ds", "--weights", "packaged", "--out", "c", "--input-size", "64", *flags)
        assert result.exit_code == 2 and "Traceback" not in result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and needle in lines[0] and "backbone_options: {decoder: 40, width: 1.25}" in lines[0]
        assert not (tmp_path / "c" / "last.pt").exists()


def test_data_workers_render_with_one_opencv_thread_set_before_they_fork():
    """Training forks its data workers with OpenCV on one thread (they render on one core
    each, and a forked child never reconfigures the pool it copied: that can hang); the
    trainer's own setting comes back once they are started."""
    import cv2
    from torch.utils.data import DataLoader

    from docsynth.train.data import ListDataset
    from docsynth.workers import one_opencv_thread, one_opencv_thread_while_forking

    class Threads(ListDataset):
        def __getitem__(self, i):
            return torch.tensor(cv2.getNumThreads())

    before = cv2.getNumThreads()
    cv2.setNumThreads(2)  # a 2-core trainer
    try:
        with one_opencv_thread_while_forking():
            batches = iter(DataLoader(Threads([0, 1]), batch_size=1, num_workers=1, worker_init_fn=one_opencv_thread))
        assert cv2.getNumThreads() == 2
        seen = [int(t) for t in batches]
        plain = [int(t) for t in DataLoader(Threads([0]), batch_size=1, num_workers=1)]
    finally:
        cv2.setNumThreads(before)
    assert seen == [1, 1] and plain == [2]
