#!/usr/bin/env bash
# Rebuild the inputs of the `cpu` preset and train its model exactly as shipped
# (docsynth/assets/docsynth-cpu.pt) on a 2-core CPU, from scratch, synthetic data only.
#
#   recipes/cpu/train.sh [RUN_DIR]        (default runs/cpu; rerun to resume an interrupted run)
#
# Steps: Debian PDF pages (recipes/offline/pages.sh), texture backgrounds
# (recipes/offline/backgrounds.sh), desk-object cut-outs (recipes/offline/cutouts.sh), the mixed input folders (recipes/cpu/inputs.py), then
# `docsynth train --online`. Checkpoints every 5 minutes; rerunning continues exactly.
# Then `python recipes/cpu/package.py RUN_DIR/last.pt --real ../shared/realdocs` writes the
# packaged docsynth/assets/docsynth-cpu.pt and its verified ONNX twin.
# Environment: CONFIG (default recipes/cpu/cpu.yaml), SEED, PYTHON (default python3), DOCSYNTH (default docsynth), REAL (photos with
# corners.csv scored after each epoch; default ../shared/realdocs when it exists).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${1:-runs/cpu}
SEED=${SEED:-}   # a training seed other than cpu.yaml's (the model card's seed table)
CONFIG=${CONFIG:-recipes/cpu/cpu.yaml}  # or a candidate recipe (recipes/cpu/v3.2.yaml)
PYTHON=${PYTHON:-python3}
DOCSYNTH=${DOCSYNTH:-docsynth}

[ -f data/documents-pdf/documents.jsonl ] || recipes/offline/pages.sh
[ -f data/backgrounds-textures/backgrounds.jsonl ] || recipes/offline/backgrounds.sh
[ -f data/cutouts/cutouts.jsonl ] || PYTHON="$PYTHON" recipes/offline/cutouts.sh
[ -d data/cpu/documents ] || "$PYTHON" recipes/cpu/inputs.py --pdf data/documents-pdf \
    --textures data/backgrounds-textures --out data/cpu

real=()
REAL=${REAL:-../shared/realdocs}
[ -f "$REAL/corners.csv" ] && real=(--eval-real "$REAL")

if [ -f "$RUN/last.pt" ]; then
  exec "$DOCSYNTH" train --resume "$RUN" "${real[@]}"
fi
seed=()
[ -n "$SEED" ] && seed=(--seed "$SEED")
exec "$DOCSYNTH" train --online -c "$CONFIG" --out "$RUN" "${seed[@]}" "${real[@]}"
