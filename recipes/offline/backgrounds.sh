#!/usr/bin/env bash
# Real surfaces without internet access beyond the Debian mirror and PyPI:
#   1. `apt-get download ufoai-textures` (336 MB, no root), `dpkg -x`, then unzip the textures
#      of /usr/share/games/ufoai/base/0textures.pk3 into cache/backgrounds/ufoai/textures/,
#   2. `pip download vpython --no-deps` and unzip its 11 photo textures (wood, rug, stucco...),
#   3. `docsynth backgrounds import-textures` tiles each surface texture to 1280x960 into
#      data/backgrounds-textures, skipping normal/specular/glow maps, decals with transparency,
#      flat colours and the texture folders that are not surfaces (vehicle skins, lights,
#      adverts, paintings, doors, windows, signs, pipes, UFO and alien-base panels, editor
#      textures: chosen by folder and file name). Licences and authors
#      come per file from the package's debian/copyright (mostly GPL-2+, some CC-BY(-SA)-3.0);
#      vpython's textures are recorded as MIT (the package licence).
#   4. dedupe (near-identical variants move to duplicates/) and CREDITS.md/credits.csv.
# Nothing here is committed (cache/ and data/ are git-ignored). Rerunning reuses the
# downloads and skips textures already imported.
#
# Usage: recipes/offline/backgrounds.sh
# Environment: CACHE (default cache/backgrounds), OUT (default data/backgrounds-textures),
#              DOCSYNTH (default: docsynth on PATH), PYTHON (default: python3, for pip download).
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE=${CACHE:-cache/backgrounds}
OUT=${OUT:-data/backgrounds-textures}
DOCSYNTH=${DOCSYNTH:-docsynth}
PYTHON=${PYTHON:-python3}
CONFIG=recipes/offline/backgrounds.yaml
mkdir -p "$CACHE"
start=$(date +%s)

# 1. ufoai-textures (Debian main)
if ! ls "$CACHE"/ufoai-textures_*.deb >/dev/null 2>&1; then
  echo "downloading ufoai-textures" >&2
  if ! (cd "$CACHE" && apt-get download ufoai-textures); then
    echo "apt-get download ufoai-textures failed; run 'apt-get update' (as root) and retry" >&2
    exit 1
  fi
fi
if [ ! -d "$CACHE/ufoai/textures" ]; then
  echo "unpacking ufoai-textures" >&2
  rm -rf "$CACHE/deb" "$CACHE/.ufoai.tmp"
  dpkg -x "$(ls "$CACHE"/ufoai-textures_*.deb | tail -n 1)" "$CACHE/deb"
  unzip -q "$CACHE/deb/usr/share/games/ufoai/base/0textures.pk3" 'textures/*' -d "$CACHE/.ufoai.tmp"
  rm "$CACHE/deb/usr/share/games/ufoai/base/0textures.pk3"   # 336 MB; the .deb stays
  mv "$CACHE/.ufoai.tmp" "$CACHE/ufoai"   # complete or absent
fi

# 2. vpython photo textures (PyPI, MIT)
if [ ! -d "$CACHE/vpython/textures" ]; then
  echo "downloading vpython" >&2
  rm -rf "$CACHE/vpython-wheel" "$CACHE/.vpython.tmp"
  mkdir -p "$CACHE/.vpython.tmp/textures"
  "$PYTHON" -m pip download vpython --no-deps -q -d "$CACHE/vpython-wheel"
  unzip -q -j "$(ls "$CACHE"/vpython-wheel/vpython-*.whl | tail -n 1)" 'vpython/vpython_data/*_texture.jpg' \
    -d "$CACHE/.vpython.tmp/textures"
  rm -f "$CACHE/.vpython.tmp/textures/earth_texture.jpg"   # a world map, not a surface
  mv "$CACHE/.vpython.tmp" "$CACHE/vpython"
fi
fetched=$(date +%s)

# 3. import: paths are relative to textures/, debian/copyright names them base/textures/...
"$DOCSYNTH" backgrounds import-textures -c "$CONFIG" "$CACHE/ufoai/textures" --out "$OUT" --name ufoai \
  --copyright "$CACHE/deb/usr/share/doc/ufoai-textures/copyright" --copyright-prefix base/textures/ \
  --source-url https://packages.debian.org/bookworm/ufoai-textures \
  --exclude 'tex_common/*' --exclude 'tex_lights/*' --exclude 'tex_anim/*' --exclude 'tex_ufo/*' \
  --exclude 'tex_alienb/*' --exclude 'tex_vehicles/*' --exclude 'tex_tech/*' --exclude 'tex_doors/*' \
  --exclude 'tex_pics/*' --exclude 'tex_misc/*' --exclude 'tex_shop/*' --exclude 'tex_furniture/*' \
  --exclude 'tex_base/*' \
  --exclude '*_nm.*' --exclude '*_sm.*' --exclude '*_gm.*' --exclude '*_g.*' --exclude '*_glow.*' \
  --exclude '*_pls.*' --exclude '*_blend*' --exclude '*_mq.*' \
  --exclude '*door*' --exclude '*window*' --exclude '*sign*' --exclude '*/art*' --exclude '*pipe*' \
  --exclude '*phone*' --exclude '*jailbars*' --exclude '*tire*' --exclude '*tree*' --exclude '*9techwall*' \
  --json > "$CACHE/import-ufoai.json"
"$DOCSYNTH" backgrounds import-textures -c "$CONFIG" "$CACHE/vpython/textures" --out "$OUT" --name vpython \
  --licence MIT --author "VPython contributors" --source-url https://pypi.org/project/vpython/ \
  --json > "$CACHE/import-vpython.json"
imported=$(date +%s)

# 4. near-identical variants aside, credits for the licences that ask for them
"$DOCSYNTH" backgrounds dedupe -c "$CONFIG" "$OUT" --apply --json > "$CACHE/dedupe.json"
"$DOCSYNTH" backgrounds credits "$OUT" --json > "$CACHE/credits.json"
done_at=$(date +%s)

"$PYTHON" - "$CACHE" <<PY
import json, sys
c = sys.argv[1]
u, v = (json.load(open(f"{c}/import-{n}.json")) for n in ("ufoai", "vpython"))
d, cr = json.load(open(f"{c}/dedupe.json")), json.load(open(f"{c}/credits.json"))
made = lambda s: sum(n for k, n in s["counts"].items() if k.startswith("made:"))
print(f"ufoai: {made(u)} backgrounds from {u['textures']} files; skipped "
      + ", ".join(f"{k.split(':')[1]} {n}" for k, n in u["counts"].items() if k.startswith("skipped:")))
print(f"vpython: {made(v)} backgrounds; licences: {json.dumps(u['licences'])} + {json.dumps(v['licences'])}")
print(f"dedupe: {d['duplicates']} near-duplicates moved to duplicates/; {d['kept']} backgrounds in $OUT "
      f"({cr['credited']} with credits in CREDITS.md)")
print("download+unpack $((fetched - start)) s, import $((imported - fetched)) s, dedupe+credits $((done_at - imported)) s")
PY
