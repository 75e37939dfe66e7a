"""Training throughput: images/s of forward + backward (+ Adam step) per backbone and input size.

    python bench/train_step.py                       # all backbones, 384 and 256 px, CPU (and CUDA if present)
    python bench/train_step.py --backbones lraspp_mobilenet_v3_large --sizes 256 160 --iters 5

Weights are 'none' (nothing to download). Each measurement runs ``--warmup`` untimed steps,
then ``--iters`` timed ones on a random batch; the model is in training mode (BatchNorm,
dropout, auxiliary head), exactly as ``docsynth train`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def bench(name: str, size: int, batch: int, iters: int, warmup: int, device: str) -> float:
    import torch

    from docsynth import config, plugins
    from docsynth.options import build
    from docsynth.train.losses import total_loss

    backbone = plugins.get("backbone", name)
    model = backbone.build(2, "none", build(backbone, {})).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    tcfg = config.defaults()["train"]
    g = torch.Generator().manual_seed(0)
    batch_data = {"image": torch.randn(batch, 3, size, size, generator=g),
                  "mask": (torch.rand(batch, size, size, generator=g) > 0.5).long(),
                  "corners": torch.rand(batch, 4, 2, generator=g), "has_corners": torch.ones(batch, dtype=torch.bool)}
    batch_data = {k: v.to(device) for k, v in batch_data.items()}
    amp = device == "cuda"

    def step() -> None:
        with torch.autocast(device, dtype=torch.float16, enabled=amp):
            out = model(batch_data["image"])
        loss, _ = total_loss(out, batch_data, tcfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - t0)


def main() -> None:
    import torch

    from docsynth import plugins

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="*", default=None, help="default: every registered backbone")
    ap.add_argument("--sizes", nargs="*", type=int, default=[384, 256])
    ap.add_argument("--batch", type=int, default=4, help="CPU batch (CUDA uses --cuda-batch)")
    ap.add_argument("--cuda-batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--devices", nargs="*", default=None, help="default: cpu, plus cuda when available")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.backbones or plugins.names("backbone")
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    results = []
    for device in devices:
        for name in names:
            for size in args.sizes:
                batch = args.cuda_batch if device == "cuda" else args.batch
                ips = bench(name, size, batch, args.iters, args.warmup, device)
                row = {"backbone": name, "size": size, "device": device, "batch": batch,
                       "threads": torch.get_num_threads(), "images_per_s": round(ips, 2)}
                results.append(row)
                if not args.json:
                    print(f"{device:5s} {name:28s} {size:4d} px  batch {batch:3d}: {ips:7.2f} images/s", flush=True)
    if args.json:
        print(json.dumps({"cpu_count": os.cpu_count(), "torch": torch.__version__, "results": results}, indent=2))


if __name__ == "__main__":
    main()
