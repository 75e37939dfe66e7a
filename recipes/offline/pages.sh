#!/usr/bin/env bash
# Real document pages without internet access beyond the Debian mirror:
#   1. `apt-get download` Debian documentation packages full of PDFs (no root, no dependencies),
#   2. `dpkg -x` each into cache/debian-docs/tree/<package>/,
#   3. render at most 2 portrait pages per PDF at 640 px with the `pdf` source, dropping pages
#      with less than 1% or more than 60% ink:  docsynth sources prepare -> data/documents-pdf.
# Each page's PDF path, page number, Debian package and licence go to documents.jsonl.
# Nothing here is committed (cache/ and data/ are git-ignored). Rerunning reuses the .debs,
# the unpacked trees and the pages already rendered.
#
# Usage: recipes/offline/pages.sh [--full]
#   quick (default): texlive-humanities-doc auto-multiple-choice-doc-pdf  (~31 MB of .debs)
#   --full: also texlive-latex-extra-doc texlive-publishers-doc texlive-science-doc
#           lilypond-doc-pdf (~900 MB of .debs, a few thousand pages)
# Environment: CACHE (default cache/debian-docs), OUT (default data/documents-pdf),
#              DOCSYNTH (default: docsynth on PATH).
set -euo pipefail
cd "$(dirname "$0")/../.."

QUICK="texlive-humanities-doc auto-multiple-choice-doc-pdf"
FULL_EXTRA="texlive-latex-extra-doc texlive-publishers-doc texlive-science-doc lilypond-doc-pdf"
PACKAGES="$QUICK"
case "${1:-}" in
  --full) PACKAGES="$QUICK $FULL_EXTRA" ;;
  "") ;;
  *) echo "usage: $0 [--full]" >&2; exit 2 ;;
esac
CACHE=${CACHE:-cache/debian-docs}
OUT=${OUT:-data/documents-pdf}
DOCSYNTH=${DOCSYNTH:-docsynth}

mkdir -p "$CACHE/debs" "$CACHE/tree"
start=$(date +%s)
for pkg in $PACKAGES; do
  if ! ls "$CACHE/debs/${pkg}"_*.deb >/dev/null 2>&1; then
    echo "downloading $pkg" >&2
    if ! (cd "$CACHE/debs" && apt-get download "$pkg"); then
      echo "apt-get download $pkg failed; run 'apt-get update' (as root) and retry" >&2
      exit 1
    fi
  fi
done
for pkg in $PACKAGES; do
  if [ ! -d "$CACHE/tree/$pkg" ]; then
    echo "unpacking $pkg" >&2
    rm -rf "$CACHE/tree/.$pkg.tmp"
    dpkg -x "$(ls "$CACHE/debs/${pkg}"_*.deb | tail -n 1)" "$CACHE/tree/.$pkg.tmp"
    mv "$CACHE/tree/.$pkg.tmp" "$CACHE/tree/$pkg"   # a tree is complete or absent
  fi
done
fetched=$(date +%s)

# The recipe's config, pointed at this cache (same file when CACHE is the default).
config=recipes/offline/pages.yaml
if [ "$CACHE" != "cache/debian-docs" ]; then
  config="$CACHE/pages.yaml"
  sed "s|root: cache/debian-docs/tree|root: $CACHE/tree|" recipes/offline/pages.yaml > "$config"
fi
"$DOCSYNTH" sources prepare -c "$config" --out "$OUT" --json > "$CACHE/prepare-summary.json"
done_at=$(date +%s)
python3 - "$CACHE/prepare-summary.json" <<PY
import json, sys
s = json.load(open(sys.argv[1]))
p = s["sources"]["pdf"]
print(f"{s['documents']} pages in {s['out']} (of {p['available']} candidates, {p['skipped']} dropped by the ink "
      f"filter or unreadable); download+unpack $((fetched - start)) s, render $((done_at - fetched)) s")
PY
