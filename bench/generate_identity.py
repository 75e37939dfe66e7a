"""Is `docsynth generate` output byte-identical to before a change?

Generates small datasets with fixed seeds (each compositor preset, file and tar shards, built-in
procedural pages and backgrounds, nothing downloaded) in a temporary folder and prints one
SHA-256 over every output file (relative path and bytes, in sorted order), plus one per dataset.
Run it before and after a refactoring: the hashes must not change.

    python bench/generate_identity.py [--json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SMALL = "  compositor_options:\n    size: [160, 208]\n    landscape_p: 0.3\n"
CASES = {
    "realistic": {"compositor": "realistic", "shard_format": "files", "workers": 2, "options": SMALL},
    "reference": {"compositor": "reference", "shard_format": "files", "workers": 1,
                  "options": "  compositor_options:\n    max_side: 240\n"},
    "homography": {"compositor": "homography", "shard_format": "files", "workers": 1, "options": ""},
    "realistic-tar": {"compositor": "realistic", "shard_format": "tar", "workers": 1, "options": SMALL},
}

CONFIG = """\
seed: 7
generate:
  source: procedural
  documents_count: 4
  background_provider: procedural
  backgrounds_count: 6
  per_document: 3
  out: {out}
  workers: {workers}
  image_format: jpg
  shard_format: {shard_format}
  compositor: {compositor}
{options}"""


def tree_hash(root: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        rel = p.relative_to(root).as_posix()
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
        n += 1
    return h.hexdigest(), n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", type=Path, help="generate here (and keep it) instead of a temp folder")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="docsynth-identity-"))
    base.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCSYNTH_")}
    results = {}
    total = hashlib.sha256()
    for name, case in CASES.items():
        work = base / name
        work.mkdir(exist_ok=True)
        (work / "docsynth.yaml").write_text(CONFIG.format(out="dataset", **case))
        proc = subprocess.run([sys.executable, "-m", "docsynth", "generate", "--json"], cwd=work,
                              env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.stderr.write(proc.stderr)
            return proc.returncode
        digest, n = tree_hash(work / "dataset")
        results[name] = {"sha256": digest, "files": n}
        total.update(name.encode() + b"\0" + digest.encode())
    out = {"sha256": total.hexdigest(), "datasets": results}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for name, r in results.items():
            print(f"{name:15s} {r['files']:4d} files  {r['sha256']}")
        print(f"{'all':15s}             {out['sha256']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
