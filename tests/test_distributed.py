"""`docsynth train` under torchrun: 2 CPU processes (gloo) train exactly like 1 process with
the same global batch, and only rank 0 writes the run folder.

The model here has no BatchNorm: BatchNorm normalises each process's share of the batch with
that share's statistics (SyncBatchNorm does not run on CPU), which moves the losses of a
BatchNorm model by about 0.5 % between 1 and 2 processes -- as much as a rank training on
the wrong samples does on data this small. Without it the two runs agree to float rounding,
so the comparison can be tight enough to catch such bugs. The tiny backbone is registered
the way a third-party plugin would be, by a launcher script torchrun runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")
if not torch.distributed.is_available():
    pytest.skip("this torch build has no torch.distributed", allow_module_level=True)

from train_data import make_dataset  # noqa: E402

from docsynth import config, plugins  # noqa: E402
from docsynth.io import read_jsonl  # noqa: E402

pytestmark = pytest.mark.slow  # trains or exports models: minutes in all (CI runs it; `-m "not slow"` skips it)

# batch_size is the global micro-batch (2 samples per process); accumulate 2 exercises DDP's
# no_sync() on the first micro-batch of each step.
TRAIN = {"backbone": "tiny_nobn", "input_size": 32, "batch_size": 4, "accumulate": 2, "epochs": 2,
         "lr": 3e-3, "workers": 0, "threads": 1, "seed": 7}

BACKBONE = textwrap.dedent('''
    """A BatchNorm-free segmentation net, registered like a third-party backbone plugin."""
    from docsynth.hookspecs import hookimpl


    class TinyNoBN:
        name = "tiny_nobn"
        description = "three convolutions, no normalisation (distributed test)"
        outputs = "mask"

        def build(self, num_classes, weights, options):
            import torch.nn.functional as F
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                              nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                                              nn.Conv2d(8, num_classes, 1))

                def forward(self, x):
                    y = self.body(x)
                    return {"out": F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)}

            return Net()


    @hookimpl
    def register_backbones(register):
        register(TinyNoBN())
''')

LAUNCHER = textwrap.dedent('''
    import sys

    import tiny_nobn
    from docsynth import plugins
    from docsynth.cli.app import main

    plugins.host().add(tiny_nobn, "tiny-nobn")
    sys.argv[0] = "docsynth"
    main()
''')


def _torchrun(script: Path, *args: str, nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def test_two_gloo_processes_match_one_process(tmp_path, monkeypatch):
    from docsynth.train.command import train

    (tmp_path / "tiny_nobn.py").write_text(BACKBONE)
    (tmp_path / "launch.py").write_text(LAUNCHER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import tiny_nobn

    plugins.host().add(tiny_nobn, "tiny-nobn")
    make_dataset(tmp_path / "ds", documents=6, per_document=4)  # 24 samples, a leak-free fifth for validation
    Path("docsynth.yaml").write_text(yaml.safe_dump({"seed": 3, "train": TRAIN}))

    single = train(config.load(None, {"train.out": "one"}), data="ds")
    run = _torchrun(tmp_path / "launch.py", "train", "ds", "--out", "two", "--json")
    if run.returncode != 0 and "terminate called without an active exception" in run.stderr:
        # Seen once in several runs on a 2-core machine under heavy load: a gloo rank aborted in
        # C++ mid-run. That is the launcher's environment, not the training code: one fresh try
        # (a real failure fails both times, and any other failure is not retried).
        run = _torchrun(tmp_path / "launch.py", "train", "ds", "--out", "two", "--json", "--force")
    assert run.returncode == 0, run.stderr[-3000:]
    # Rank 0 alone prints the summary (one JSON document on stdout) and writes the run folder.
    summary = json.loads(run.stdout)
    assert (single["world_size"], summary["world_size"]) == (1, 2)
    assert summary["steps"] == single["steps"] >= 4
    assert sorted(p.name for p in Path("two").iterdir()) == sorted(p.name for p in Path("one").iterdir())

    one, two = read_jsonl("one/metrics.jsonl"), read_jsonl("two/metrics.jsonl")
    assert [r["step"] for r in one] == [r["step"] for r in two]
    for a, b in zip(one, two, strict=True):
        for key in ("train_loss", "valid_loss", "valid_iou"):
            assert b[key] == pytest.approx(a[key], rel=2e-4, abs=1e-5), (key, a, b)
    # Training moved the weights, so equal losses are not two untouched initialisations.
    assert one[-1]["train_loss"] < one[0]["train_loss"]
    w1 = torch.load("one/last.pt", map_location="cpu", weights_only=False)["model"]
    w2 = torch.load("two/last.pt", map_location="cpu", weights_only=False)["model"]
    assert w1.keys() == w2.keys()
    for k in w1:
        assert torch.allclose(w1[k], w2[k], rtol=1e-3, atol=1e-5), k
