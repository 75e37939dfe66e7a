"""Training and inference speed of the compact backbones on this CPU.

For each input size: forward + backward images/s (batch ``--batch``, ``--threads`` threads,
AdamW step included) and single-image inference latency on one thread (median of
``--repeats``). Numbers on a shared machine vary with load: run it on an idle one and compare
sizes within one run.

    python bench/compact_models.py --sizes 160 192 224 256 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=["compact", "compact_corners"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[160, 192, 224, 256])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    from docsynth import plugins
    from docsynth.options import build

    rows = []
    for name in args.backbones:
        for size in args.sizes:
            torch.manual_seed(0)
            backbone = plugins.get("backbone", name)
            model = backbone.build(2, "none", build(backbone, {}))
            params = sum(p.numel() for p in model.parameters())
            torch.set_num_threads(args.threads)
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            x = torch.randn(args.batch, 3, size, size)
            times = []
            for step in range(args.steps + 1):  # the first step warms up allocators
                t0 = time.perf_counter()
                out = model(x)
                loss = sum(v.float().mean() for v in out.values())
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step:
                    times.append(time.perf_counter() - t0)
            torch.set_num_threads(1)
            model.eval()
            one = torch.randn(1, 3, size, size)
            lat = []
            with torch.inference_mode():
                model(one)
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    model(one)
                    lat.append(time.perf_counter() - t0)
            rows.append({"backbone": name, "params": params, "input_size": size,
                         "train_images_per_s": round(args.batch / statistics.median(times), 1),
                         "train_threads": args.threads,
                         "infer_ms_1_thread": round(1000 * statistics.median(lat), 2)})
            if not args.json:
                r = rows[-1]
                print(f"{name:16s} {params/1e6:.2f} M  {size:4d} px  train {r['train_images_per_s']:7.1f} img/s "
                      f"({args.threads} threads)  inference {r['infer_ms_1_thread']:6.2f} ms (1 thread)", flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
