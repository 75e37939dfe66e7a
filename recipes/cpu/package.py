"""Turn a finished `cpu` run into the packaged model: docsynth/assets/docsynth-cpu.pt (weights and
the model contract only: no optimizer, scheduler or RNG state) and its ONNX twin
docsynth/assets/docsynth-cpu.onnx (what `docsynth scan` uses without torch), exported with
`docsynth export-model` and verified against the .pt on composites and, when given, real photos.

    python recipes/cpu/package.py runs/cpu/last.pt [--real ../shared/realdocs] [--commit SHA]

``--commit`` names the docsynth commit the run was trained at (its composites come from that
commit's generator; default: this checkout's HEAD), recorded in the checkpoint's ``training``.

The last epoch's weights are shipped (last.pt), not the epoch that scored best on any photos:
nothing is selected on the real photos.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

KEEP = ("format", "backbone", "backbone_options", "input_size", "mean", "std", "num_classes", "outputs",
        "model", "epoch", "step")
ASSETS = Path(__file__).resolve().parents[2] / "docsynth" / "assets"


def main() -> None:
    import torch

    from docsynth.io import atomic_write_bytes
    from docsynth.scan.export_model import export_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="a run's last.pt")
    ap.add_argument("--real", type=Path, default=None, help="photos with corners.csv to check the ONNX export on")
    ap.add_argument("--out", type=Path, default=ASSETS, help="assets folder (default: the package's)")
    ap.add_argument("--commit", default=None, help="docsynth commit the run was trained at (default: HEAD)")
    args = ap.parse_args()

    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    state = ckpt.get("run_state") or {}
    packaged = {k: ckpt[k] for k in KEEP if k in ckpt}
    packaged["model"] = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    packaged["training"] = {
        "recipe": "recipes/cpu (recipes/cpu/train.sh: docsynth train --online -c recipes/cpu/cpu.yaml)",
        "train_config": ckpt["config"]["train"],
        "generate_config": ckpt["config"]["generate"],
        "seed": ckpt["config"]["seed"],
        "train_wall_seconds": state.get("wall_seconds"),
        "train_cpu_seconds": state.get("cpu_seconds"),
        "code_commit": args.commit or _head(),
    }
    buf = io.BytesIO()
    torch.save(packaged, buf)
    pt = args.out / "docsynth-cpu.pt"
    atomic_write_bytes(pt, buf.getvalue())
    summary = export_model(pt, "onnx", args.out / "docsynth-cpu.onnx", force=True, real=args.real)
    print(f"wrote {pt} ({pt.stat().st_size / 1e6:.2f} MB) and {args.out / 'docsynth-cpu.onnx'}")
    print({k: v for k, v in summary.items() if k in ("size_bytes", "latency_ms", "agreement")})


def _head() -> str | None:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ASSETS, check=True, capture_output=True,
                              text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    main()
