#!/usr/bin/env bash
# Real desk-object cut-outs without internet access beyond the Debian mirror:
#   1. `apt-get download openclipart-png` (131 MB, Debian main, public domain; no root),
#   2. `dpkg -x` it into cache/clipart/tree/,
#   3. recipes/offline/cutouts.py keeps the desk-like objects (fruit, mugs, pens, phones, mice,
#      keyboards, calculators...) as trimmed RGBA PNGs in data/cutouts with cutouts.jsonl
#      (original path, package, licence per file).
# The `realistic` compositor pastes them with `compositor_options: {cutouts: data/cutouts}`.
# Nothing here is committed (cache/ and data/ are git-ignored). Rerunning reuses the download.
# Environment: CACHE (default cache/clipart), OUT (default data/cutouts), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${CACHE:-cache/clipart}
OUT=${OUT:-data/cutouts}
PYTHON=${PYTHON:-python3}
mkdir -p "$CACHE"
if ! ls "$CACHE"/openclipart-png_*.deb >/dev/null 2>&1; then
  echo "downloading openclipart-png" >&2
  if ! (cd "$CACHE" && apt-get download openclipart-png); then
    echo "apt-get download openclipart-png failed; run 'apt-get update' (as root) and retry" >&2
    exit 1
  fi
fi
if [ ! -d "$CACHE/tree/usr/share/openclipart/png" ]; then
  echo "unpacking openclipart-png" >&2
  dpkg -x "$CACHE"/openclipart-png_*.deb "$CACHE/tree"
fi
"$PYTHON" recipes/offline/cutouts.py --tree "$CACHE/tree/usr/share/openclipart/png" --out "$OUT"
