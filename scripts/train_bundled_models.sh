#!/usr/bin/env bash
# The bundled wbc 0.4.0 is NOT made by this script any more but by the multi-source recipe
# (docs/models.md, "Multi-source wbc"; BENCHMARKS.md, "Multi-source cell models"):
#   python scripts/prepare_cell_data.py --work W && python scripts/prepare_cell_data.py --only deepapl --work W
#   python scripts/pack_cell_banks.py --work W --out PACK
#   python scripts/train_multisource.py --data PACK --out RUNS --name final_long --budget-s 165   (one H200 GPU)
#   python scripts/install_multisource_wbc.py --run RUNS/final_long --name wbc --version 0.4.0 --out src/hemascope/models/weights
# This script still documents how wbc 0.1.0-0.3.0 and blast 0.2.0 were trained.
# Train the bundled cell models on the real data (see docs/models.md).
# Usage: scripts/train_bundled_models.sh [WORK_DIR] [EPOCHS] [SAMPLES_PER_EPOCH]
# The two models train in parallel (one process each).
# The bundled wbc 0.3.0 = this wbc command (8 epochs x 2048), resumed to --epochs 13 (0.2.0), then
# with VERSION=0.3.0 --samples-per-epoch 8192 --stain-mix 0.5 --blur-p 0.5 --resume to --epochs 21
# and on to --epochs 50 (best validation epoch 48); exact commands in BENCHMARKS.md. After any
# retraining of wbc, retrain the bag models: scripts/train_bag_models.sh (they pin wbc's sha256).
# The bundled blast 0.2.0 = the blast command alone with VERSION=0.2.0 --epochs 30
# --samples-per-epoch 8192 --stain-mix 0.5 --blur-p 0.5 (from scratch; passes the stain-shortcut
# check, which 0.1.0 = the plain blast command failed); see BENCHMARKS.md.
# First run: python scripts/prepare_cell_data.py --work WORK_DIR  (scales, Taleqani crops, splits)
set -euo pipefail
W=${1:-/tmp/hemascope_cells}
EPOCHS=${2:-8}
SPE=${3:-2048}
COMMON=(--epochs "$EPOCHS" --samples-per-epoch "$SPE" --threads 2 --cache-dir "$W/cache" --quiet --val-per-epoch 1000
        --input-size 48 --model-mpp 0.5 --widths 16,32,64,128 --seed 0)
PBC="PBC (Acevedo et al. 2020, Data in Brief 30:105474; Mendeley snkd93bnjr; CC BY 4.0), CellaVision DM96, MGG, 0.105 um/px measured from red cells"
TAL="Taleqani Hospital B-ALL fields (Aria, Ghaderzadeh et al. 2021), cells cut by scripts/prepare_cell_data.py at 0.444 um/px, field label inherited (noisy)"
SPLIT="splits: benchmarks/splits/*.csv (seed 0, 70/15/15; Taleqani split by field)"

hemascope train cells --name wbc --version "${VERSION:-0.1.0}" --classes wbc --no-domain-balance \
  --train "$W/pbc_train.csv" --train "$W/taleqani_train.csv" \
  --val "$W/pbc_val.csv" --val "$W/taleqani_val.csv" \
  --test "$W/pbc_test.csv" --test "$W/taleqani_test.csv" \
  --training-data "$PBC" --training-data "$TAL" --training-data "$SPLIT" \
  --licence "weights: BSD-3-Clause (hemascope); trained on PBC (CC BY 4.0) and Taleqani ALL (upstream licence not verified; research use only)" \
  --description "White-cell type + blast classifier for single-cell crops (research use only)" \
  "${COMMON[@]}" --out "$W/runs/wbc" &

hemascope train cells --name blast --version "${VERSION:-0.1.0}" --classes nonblast,blast \
  --relabel blast=blast --relabel '*=nonblast' \
  --train "$W/pbc_train.csv" --train "$W/taleqani_train.csv" \
  --val "$W/pbc_val.csv" --val "$W/taleqani_val.csv" \
  --test "$W/pbc_test.csv" --test "$W/taleqani_test.csv" \
  --training-data "$PBC" --training-data "$TAL" --training-data "$SPLIT" \
  --licence "weights: BSD-3-Clause (hemascope); trained on PBC (CC BY 4.0) and Taleqani ALL (upstream licence not verified; research use only)" \
  --description "Blast vs non-blast for single-cell crops; domain-balanced (PBC / Taleqani) (research use only)" \
  "${COMMON[@]}" --out "$W/runs/blast" &
wait
