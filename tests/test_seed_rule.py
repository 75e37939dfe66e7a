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


def with_photos(base: dict, photos: dict[str, float]) -> dict:
    return {**base, "real": {**base["real"], "photos": photos}}


def test_a_photo_a_candidate_seed_loses_outright_is_named_even_when_the_means_hide_it():
    shipped = {f"a-s{s}": with_photos(row(0.87, 0.93), {"hand.jpg": 0.96 - d, "page.jpg": 0.9}) for s, d in
               ((41, 0.0), (43, 0.01), (44, 0.02))}
    candidate = {"b-s41": with_photos(row(0.9, 0.93), {"hand.jpg": 0.33, "page.jpg": 0.95}),
                 "b-s43": with_photos(row(0.9, 0.93), {"hand.jpg": 0.95, "page.jpg": 0.81}),
                 "b-s44": with_photos(row(0.9, 0.93), {"hand.jpg": 0.60, "page.jpg": 0.85})}
    lost = seeds.photos_lost(shipped, candidate)
    assert len(lost) == 1 and lost[0].startswith("hand.jpg: 2 of 3 seeds below 0.840")  # 0.81 is not 0.1 below 0.9
    assert seeds.photos_lost(shipped, shipped) == []
    assert seeds.photos_lost(SHIPPED, candidate) == []  # tables without per-photo scores: nothing to say


def test_a_run_stopped_before_its_epochs_is_refused_not_scored(tmp_path, capsys):
    import torch

    run = tmp_path / "v9-s41"
    run.mkdir()
    ckpt = {"epoch": 3, "config": {"train": {"epochs": 60}}, "run_state": {"stopped_early": False}}
    torch.save(ckpt, run / "last.pt")
    assert seeds.main([str(run), "--real", str(tmp_path)]) == 2
    assert "is at epoch 3 of 60 (resume it first)" in capsys.readouterr().err
    torch.save({**ckpt, "run_state": {"stopped_early": True}}, run / "last.pt")  # early stopping finished it
    assert seeds.unfinished(run) is None
    torch.save({**ckpt, "epoch": 60}, run / "last.pt")
    assert seeds.unfinished(run) is None
