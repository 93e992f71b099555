#!/usr/bin/env bash
# Train, cross-validate and bundle the `apl` bag model (APL vs other AML; see docs/apl.md).
# Usage: scripts/train_apl_model.sh [WORK_DIR]      (~5-10 min on 2 CPU cores)
# 1. embeds every DeepAPL cell once with the bundled `wbc` cell model (cache keyed by its sha256),
# 2. `hemascope train bags --method grouped --folds ...` (the best variant of benchmarks/bench_apl.py):
#    5x5 patient-level cross-validation on the saved folds
#    (benchmarks/slide_splits/deepapl_cv_folds.csv), abstention threshold where the CV accuracy
#    collapses, then the final model on all 82 patients with the out-of-fold temperature,
# 3. copies apl.json/apl.safetensors into the bundled weights and the CV curve into docs/images.
# Rerun it whenever `wbc` changes: the card pins wbc's sha256 and predict-bags refuses another.
set -euo pipefail
W=${1:-/tmp/hemascope_apl}
DATA=${DATA:-/work/shared/data/deepapl}
HS=${HEMASCOPE:-hemascope}
WEIGHTS=src/hemascope/models/weights
mkdir -p "$W"
SHA=$(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"][:12])' "$WEIGHTS/wbc.json")
CACHE="$W/deepapl_wbc_$SHA.npz"
$HS train bags --labels "$DATA/patients.csv" --classes APL,AML --positive APL \
  --cell-model wbc --mpp 0.21 --instances all --cache "$CACHE" \
  --folds benchmarks/slide_splits/deepapl_cv_folds.csv \
  --method grouped --groups blast+ig --l2 "${L2:-20}" \
  --min-instances auto --threads "${THREADS:-1}" --seed 0 \
  --name apl --version "${VERSION:-0.1.0}" \
  --training-data "DeepAPL discovery cohort (Sidhom et al., Deep learning for distinguishing morphological features of Acute Promyelocytic Leukemia, npj Precision Oncology 5:38, 2021; data published with the authors' DeepAPL code): 82 AML patients (22 APL with PML::RARA confirmed genetically, 60 other AML), 12,153 technologist-signed CellaVision peripheral-blood white-cell crops (central 300x300 px downsampled 2x, 0.21 um/px); one bag per patient of every cell (smudges included), diagnosis = bag label; the technologists' cell-type labels are not used" \
  --training-data "embeddings: bundled cell model wbc (sha256 pinned in this card)" \
  --training-data "5x5 patient-level CV folds: benchmarks/slide_splits/deepapl_cv_folds.csv; metrics.cross_validation = out-of-fold, cross-fitted calibration, 95% patient-bootstrap intervals" \
  --licence "weights: BSD-3-Clause (hemascope); trained on DeepAPL data, copyright The Johns Hopkins University, no open licence stated: research use only, credit Sidhom et al. 2021; the images are not redistributed" \
  --description "APL (PML::RARA) vs other AML from the bag of a patient's peripheral-blood white cells: mean wbc embedding and share of the cells wbc calls blast or ig (promyelocyte-like) and of all other cells, ridge logistic regression. Research use only - not for diagnosis." \
  --quiet --out "$W/apl"
cp "$W/apl/apl.json" "$W/apl/apl.safetensors" "$WEIGHTS/"
# what the model answers (shown beside every answer), then the floor below which it abstains (the
# lowest blast/ig share of its training bags, measured on the new model)
python - "$WEIGHTS/apl.json" <<'EOF'
import json, sys
card = json.load(open(sys.argv[1]))
card["question"] = "APL (PML::RARA) or another AML, for a patient known to have AML; not a test for leukaemia"
open(sys.argv[1], "w").write(json.dumps(card, indent=2) + "\n")
EOF
python benchmarks/bench_apl_normal_blood.py --set-reference
mkdir -p docs/images
cp "$W/apl/apl.cv_curve.png" docs/images/apl_model_cv_curve.png
echo "bundled $WEIGHTS/apl.json (wbc $SHA)"
