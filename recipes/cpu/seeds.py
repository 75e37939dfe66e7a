"""The seed table of the `cpu` recipe, and which seed ships: each finished run scored on real
photos (by subset) and on the synthetic hard-case benchmark, then the shipping rule applied.

    python recipes/cpu/seeds.py runs/v3-s41 runs/v3-s43 runs/v3-s44 \
        --real ../shared/realdocs --hardcases runs/hc24 [--json seeds.json]
    python recipes/cpu/seeds.py --scored v32-s41.json v32-s43.json ... --against v31-s41.json ...

Each run's ``last.pt`` is scored with `docsynth evaluate` (post-processor ``refine``). The rule
(docs/cpu-model.md, fixed before the v3 runs finished): the shipped model is the **median
seed** by its worst real-photo subset; ties go to the lower seed. The table gives, per seed,
the real-photo mean, worst subset and every subset, the hard-case mean, worst case and false
refusals, and the false-acceptance rate on the benchmark's page-less photos; then the mean and
the minimum over seeds; ``--json`` keeps every photo's score too, and ``--scored ... --against``
lists the real photos a candidate seed loses outright (a subset mean averages such losses
away). Runs that stopped before their configured epochs are refused, not scored. Nothing here
picks the best draw.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def score(checkpoint: Path, folder: Path) -> dict[str, Any]:
    from docsynth.evaluate.command import run_evaluation

    report = run_evaluation(folder, checkpoint, post="refine")
    return report["methods"]["model:refine"]


def summary(result: dict[str, Any]) -> dict[str, Any]:
    subsets = {name: round(s["mean_jaccard"], 4) for name, s in result["subsets"].items()}
    worst = min(subsets, key=subsets.get)
    return {"mean": round(result["mean_jaccard"], 4), "worst_subset": worst, "worst": subsets[worst],
            "subsets": subsets, "abstention": result.get("abstention"),
            "refused": [r["image"] for r in result["images"] if r["corners"] is None],
            "photos": {r["image"]: round(r["jaccard"], 4) for r in result["images"] if r.get("jaccard") is not None}}


def unfinished(run: Path) -> str | None:
    """Why ``run`` is not a finished training run (its last.pt stops before the configured
    epochs: a stopped run would be scored as if it were a seed), or None."""
    import torch

    ckpt = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    state = ckpt.get("run_state") or {}
    epochs = ckpt["config"]["train"]["epochs"]
    if ckpt["epoch"] < epochs and not state.get("stopped_early"):
        return f"{run / 'last.pt'} is at epoch {ckpt['epoch']} of {epochs} (resume it first)"
    return None


def photos_lost(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]], drop: float = 0.1) -> list[str]:
    """Real photos that some candidate seed reads more than ``drop`` below the shipped recipe's
    worst seed on that photo: losses a subset mean averages away. Tables written before
    per-photo scores were kept have none to compare."""
    def scores(rows: dict[str, dict[str, Any]]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for row in rows.values():
            for image, value in (row["real"].get("photos") or {}).items():
                out.setdefault(image, []).append(value)
        return out

    was, now = scores(old), scores(new)
    lines = []
    for image in sorted(set(was) & set(now)):
        floor = min(was[image])
        lost = [v for v in now[image] if v < floor - drop]
        if lost:
            lines.append(f"{image}: {len(lost)} of {len(now[image])} seeds below {floor - drop:.3f} "
                         f"({', '.join(f'{v:.3f}' for v in now[image])}; shipped {', '.join(f'{v:.3f}' for v in was[image])})")
    return lines


def median_seed(rows: dict[str, dict[str, Any]]) -> str:
    """The run whose worst real-photo subset is the median of all runs (lower seed on ties)."""
    order = sorted(rows, key=lambda run: (rows[run]["real"]["worst"], run))
    return order[(len(order) - 1) // 2]


def subset_means(rows: dict[str, dict[str, Any]], part: str = "real") -> dict[str, float]:
    """Each subset's mean over the runs (``part``: "real" or "hardcases")."""
    names = sorted({name for row in rows.values() for name in row[part]["subsets"]})
    return {name: sum(row[part]["subsets"][name] for row in rows.values()) / len(rows) for name in names}


def replaces(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]], slack: float = 0.005) -> list[str]:
    """Why the candidate recipe (``new``'s runs) does NOT replace the shipped one (``old``'s);
    empty when it does. The rule (docs/cpu-model.md, fixed before the v3.2 runs): over the seeds,
    its worst real-photo subset (by mean) is higher than the shipped recipe's, no subset's mean
    is more than ``slack`` below the shipped one's, and its hard-case mean is no more than
    ``slack`` below."""
    reasons = []
    was, now = subset_means(old), subset_means(new)
    if min(now.values()) <= min(was.values()):
        reasons.append(f"worst subset {min(now, key=now.get)} {min(now.values()):.4f} is not above "
                       f"{min(was, key=was.get)} {min(was.values()):.4f}")
    reasons += [f"{name} {now[name]:.4f} is more than {slack} below {was[name]:.4f}"
                for name in was if name in now and now[name] < was[name] - slack]
    if all("hardcases" in row for row in (*old.values(), *new.values())):
        hc_was = sum(row["hardcases"]["mean"] for row in old.values()) / len(old)
        hc_now = sum(row["hardcases"]["mean"] for row in new.values()) / len(new)
        if hc_now < hc_was - slack:
            reasons.append(f"hard-case mean {hc_now:.4f} is more than {slack} below {hc_was:.4f}")
    return reasons


def _load(paths: list[Path]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for path in paths:
        rows.update(json.loads(path.read_text())["runs"])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", type=Path, help="run folders with last.pt")
    ap.add_argument("--real", type=Path, default=None, help="real photos with corners.csv")
    ap.add_argument("--hardcases", type=Path, default=None, help="a `docsynth hardcases` folder")
    ap.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
    ap.add_argument("--scored", type=Path, nargs="+", default=None,
                    help="instead of RUNS: tables written earlier by --json (a candidate recipe's seeds)")
    ap.add_argument("--against", type=Path, nargs="+", default=None,
                    help="tables (--json) of the shipped recipe's seeds: say whether the candidate replaces it")
    args = ap.parse_args(argv)
    if args.scored:
        return compare(_load(args.scored), _load(args.against) if args.against else None)
    if not args.runs or args.real is None:
        print("seeds: give run folders and --real, or --scored TABLES", file=sys.stderr)
        return 2
    missing = [str(run / "last.pt") for run in args.runs if not (run / "last.pt").is_file()]
    if missing:
        print(f"seeds: no finished run at {', '.join(missing)}", file=sys.stderr)
        return 2
    stopped = [why for run in args.runs if (why := unfinished(run))]
    if stopped:
        print(f"seeds: {'; '.join(stopped)}", file=sys.stderr)
        return 2
    rows: dict[str, dict[str, Any]] = {}
    for run in args.runs:
        row = {"real": summary(score(run / "last.pt", args.real))}
        if args.hardcases is not None:
            row["hardcases"] = summary(score(run / "last.pt", args.hardcases))
        rows[str(run)] = row
        print(f"{run}: real mean {row['real']['mean']:.4f}, worst {row['real']['worst_subset']} "
              f"{row['real']['worst']:.4f}; " + ", ".join(f"{k} {v:.4f}" for k, v in row["real"]["subsets"].items())
              + (f"; refused {', '.join(row['real']['refused'])}" if row["real"]["refused"] else ""))
        if "hardcases" in row:
            hc, ab = row["hardcases"], row["hardcases"]["abstention"] or {}
            print(f"  hard cases mean {hc['mean']:.4f}, worst {hc['worst_subset']} {hc['worst']:.4f}; false refusals "
                  f"{ab.get('false_refusal')}, false acceptances {ab.get('false_acceptance')} "
                  f"(confident {ab.get('confident_false_acceptance')})")
    for part in ("real", "hardcases"):
        values = [r[part] for r in rows.values() if part in r]
        if values:
            means = [v["mean"] for v in values]
            worsts = [v["worst"] for v in values]
            print(f"over {len(values)} seeds, {part}: mean {sum(means) / len(means):.4f} (min {min(means):.4f}), "
                  f"worst subset mean {sum(worsts) / len(worsts):.4f} (min {min(worsts):.4f})")
    ship = median_seed(rows)
    print(f"ships (median seed by worst real-photo subset): {ship}")
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "ships": ship}, indent=2) + "\n")
    return 0


def compare(new: dict[str, dict[str, Any]], old: dict[str, dict[str, Any]] | None) -> int:
    """Print the subset means of scored runs and, given the shipped recipe's, the rule's verdict."""
    for label, rows in (("candidate", new), ("shipped", old)):
        if rows:
            means = subset_means(rows)
            hc = [row["hardcases"]["mean"] for row in rows.values() if "hardcases" in row]
            print(f"{label} ({len(rows)} seeds): " + ", ".join(f"{k} {v:.4f}" for k, v in means.items())
                  + (f"; hard cases {sum(hc) / len(hc):.4f}" if hc else ""))
    if old:
        reasons = replaces(old, new)
        print("the candidate replaces the shipped recipe" if not reasons else
              "the candidate does not replace the shipped recipe: " + "; ".join(reasons))
        for line in photos_lost(old, new):
            print(f"  lost: {line}")
    print(f"its median seed: {median_seed(new)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
