"""The rules that pick the shipped model from training seeds (recipes/cpu/seeds.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("recipe_seeds", ROOT / "recipes" / "cpu" / "seeds.py")
seeds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seeds)


def row(worst_book: float, hard: float, desk: float = 0.95) -> dict:
    subsets = {"books": worst_book, "desk": desk, "easy": 0.99}
    worst = min(subsets, key=subsets.get)
    return {"real": {"worst": subsets[worst], "worst_subset": worst, "subsets": subsets},
            "hardcases": {"mean": hard}}


SHIPPED = {"a-s41": row(0.86, 0.93), "a-s43": row(0.87, 0.93), "a-s44": row(0.88, 0.94)}


def test_the_median_seed_by_worst_subset_ships_and_ties_go_to_the_lower_seed():
    assert seeds.median_seed(SHIPPED) == "a-s43"
    assert seeds.median_seed({"s44": row(0.9, 0.9), "s41": row(0.9, 0.9)}) == "s41"


def test_a_candidate_replaces_the_shipped_recipe_only_by_the_written_rule():
    better = {"b-s41": row(0.90, 0.93), "b-s43": row(0.91, 0.935), "b-s44": row(0.92, 0.93)}
    assert seeds.replaces(SHIPPED, better) == []
    assert seeds.replaces(SHIPPED, SHIPPED)  # equal is not better
    # a better worst subset bought with another subset more than 0.005 lower
    trade = {k: row(v["real"]["subsets"]["books"], 0.93, desk=0.94) for k, v in better.items()}
    assert any("desk" in why for why in seeds.replaces(SHIPPED, trade))
    # ... or with the hard cases
    worse_hard = {k: row(v["real"]["subsets"]["books"], 0.92) for k, v in better.items()}
    assert any("hard-case" in why for why in seeds.replaces(SHIPPED, worse_hard))
    # within the slack, a small loss elsewhere is allowed
    slight = {k: row(v["real"]["subsets"]["books"], 0.93, desk=0.946) for k, v in better.items()}
    assert seeds.replaces(SHIPPED, slight) == []
