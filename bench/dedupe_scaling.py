"""How near-duplicate search time grows with the number of hashes.

Synthetic 64-bit hashes: random ones plus planted near-duplicates (0-6 bits flipped from a
random original, 10% of the set). Times the multi-index search and the grouping that
`docsynth backgrounds dedupe` runs, next to a blocked all-pairs NumPy comparison for
reference, and checks that both find the same pairs.

    python bench/dedupe_scaling.py [--sizes 1000 5000 20000] [--threshold 6] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from docsynth.backgrounds.dedupe import group_duplicates, near_pairs


def synthetic_hashes(n: int, seed: int = 0, planted: float = 0.1, max_flips: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = int(n * planted)
    base = rng.integers(0, 2 ** 64 - 1, size=n - k, dtype=np.uint64, endpoint=True)
    copies = base[rng.integers(0, n - k, size=k)].copy()
    for i in range(k):
        for bit in rng.choice(64, size=int(rng.integers(0, max_flips + 1)), replace=False):
            copies[i] ^= np.uint64(1) << np.uint64(int(bit))
    return rng.permutation(np.concatenate([base, copies]))


def all_pairs(h: np.ndarray, threshold: int, block: int = 2048) -> int:
    """Every pair compared, in blocks (what an index avoids)."""
    found = 0
    for start in range(0, h.size, block):
        d = np.bitwise_count(h[start:start + block, None] ^ h[None, :])
        rows = np.arange(start, min(start + block, h.size))[:, None]
        found += int(((d <= threshold) & (np.arange(h.size)[None, :] > rows)).sum())
    return found


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--threshold", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"threshold {args.threshold}; best of {args.repeat}; times in milliseconds")
    print(f"| {'hashes':>7} | {'pairs found':>11} | {'groups':>6} | {'index search':>12} | {'+ grouping':>10} "
          f"| {'all pairs':>9} | {'ratio':>5} |")
    print("|" + "|".join("-" * w for w in (9, 13, 8, 14, 12, 11, 7)) + "|")
    for n in args.sizes:
        h = synthetic_hashes(n)
        sizes = list(range(n))
        t_search, (pairs, _) = best_of(lambda h=h: near_pairs(h, args.threshold), args.repeat)
        t_group, groups = best_of(lambda h=h, sizes=sizes: group_duplicates(h, sizes, args.threshold), args.repeat)
        t_all, count = best_of(lambda h=h: all_pairs(h, args.threshold), 1)
        assert count == len(pairs), (count, len(pairs))
        print(f"| {n:>7} | {len(pairs):>11} | {len(groups):>6} | {t_search * 1e3:>12.1f} | {t_group * 1e3:>10.1f} "
              f"| {t_all * 1e3:>9.1f} | {t_all / t_search:>5.1f} |")


if __name__ == "__main__":
    main()
