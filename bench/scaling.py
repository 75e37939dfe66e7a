"""Generation throughput: 1 and 2 local workers, and Ray with 2 CPUs, in one run.

    python bench/scaling.py                 # 200 samples, default generate settings
    python bench/scaling.py --count 400 --json

Each executor writes the same dataset into its own temporary folder (the script checks the
bytes are identical, as they must be). Ray's start-up is timed apart from the generation, so
samples/s compares the executors on equal terms; the one-off start cost is printed too.
The scaling ratio is samples/s with 2 workers over samples/s with 1. The configurations
run in interleaved rounds (``--repeat``) and each keeps its best round, because on a shared
machine other work easily moves one run by tens of percent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from docsynth import config
from docsynth.generate.shards import generate


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "run.yaml"}


def timed(cfg_overrides: dict, out: Path) -> float:
    cfg = config.load(None, {**cfg_overrides, "generate.out": str(out)})
    t0 = time.perf_counter()
    summary = generate(cfg)
    seconds = time.perf_counter() - t0
    assert summary["written"] == summary["samples"], summary
    return summary["written"] / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="samples per executor")
    parser.add_argument("--shard-size", type=int, default=10, help="samples per shard")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2,
                        help="rounds; each configuration's best round counts (less noise from other work)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    base = {"seed": args.seed, "generate.count": args.count, "generate.shard_size": args.shard_size}
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="docsynth-scaling-") as tmp:
        root = Path(tmp)
        os.chdir(root)  # built-in defaults only, never a docsynth.yaml of the current folder
        ray_start = None
        try:
            import ray
        except ImportError:
            ray = None
            print("ray not installed (pip install 'docsynth[ray]'): skipping the Ray run", file=sys.stderr)
        else:
            t0 = time.perf_counter()
            ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
            ray_start = time.perf_counter() - t0
        configs = {"local_1": {"generate.workers": 1}, "local_2": {"generate.workers": 2}}
        if ray is not None:
            configs["ray_2"] = {"generate.executor": "ray"}
        try:
            # Rounds interleave the configurations so that a burst of other load hits all alike.
            for round_ in range(max(1, args.repeat)):
                for name, overrides in configs.items():
                    out = root / f"{name}-{round_}"
                    results[name] = max(results.get(name, 0.0), timed({**base, **overrides}, out))
        finally:
            if ray is not None:
                ray.shutdown()
        reference = tree_bytes(root / "local_1-0")
        identical = all(tree_bytes(out) == reference for out in root.iterdir() if out.is_dir())

    report = {
        "count": args.count,
        "repeat": max(1, args.repeat),
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),  # other work on the machine skews scaling
        "samples_per_second": {k: round(v, 2) for k, v in results.items()},
        "scaling_local_2_over_1": round(results["local_2"] / results["local_1"], 2),
        "scaling_ray_2_over_local_1": round(results["ray_2"] / results["local_1"], 2) if "ray_2" in results else None,
        "ray_start_seconds": round(ray_start, 2) if ray_start is not None else None,
        "outputs_identical": identical,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.count} samples on {report['cpus']} CPUs (load average {report['load_average_1min']})")
    for name, value in report["samples_per_second"].items():
        print(f"  {name:8s} {value:8.2f} samples/s")
    print(f"  scaling 2 local workers / 1: {report['scaling_local_2_over_1']}")
    if report["scaling_ray_2_over_local_1"] is not None:
        print(f"  scaling Ray 2 CPUs / 1 local worker: {report['scaling_ray_2_over_local_1']} "
              f"(Ray start {report['ray_start_seconds']} s, not included)")
    print(f"  outputs byte-identical: {identical}")


if __name__ == "__main__":
    main()
