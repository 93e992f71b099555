#!/usr/bin/env bash
# Train, evaluate and bundle the slide-level (bag) models (see docs/bags.md).
# Usage: [STAGES="taleqani demo aml"] scripts/train_bag_models.sh [WORK_DIR]
# Remakes every bundled slide-level model and the SYNTHETIC/DEMO cell model `wbc-demo` they use:
#   taleqani-all{,-mean,-cells}  on `wbc` embeddings (each a 5-seed ensemble),
#   wbc-demo                     scripts/make_demo_cell_model.py (synthetic cells only),
#   aml-subtype-demo{,-mean}     on `wbc-demo` embeddings of the synthetic AML patients.
# Needs: the bundled `wbc` cell model; the Taleqani white-cell crops of
#        `python scripts/prepare_cell_data.py --work "$CELLS"` (cut out of every field and split by
#        field with the wbc model's seed-0 split); the synthetic AML bags
#        (`python scripts/make_synthetic_aml_bags.py --out "$AML"`).
set -euo pipefail
W=${1:-/tmp/hemascope_bag_runs}
DATA=${DATA:-/work/shared/data/taleqani_all}
AML=${AML:-/tmp/hemascope_aml_bags}
CELLS=${CELLS:-/tmp/hemascope_cells}
EPOCHS=${EPOCHS:-30}
MEMBERS=${MEMBERS:-5}
STAGES=${STAGES:-taleqani demo aml}
has() { [[ " $STAGES " == *" $1 "* ]]; }
COMMON=(--threads "${THREADS:-1}" --seed 0 --epochs "$EPOCHS" --batch-size 16 --lr 0.003 --quiet)
# the demo AML models: 40 epochs at lr 0.001 (the train bags defaults)
AML_OPTS=(--threads "${THREADS:-1}" --seed 0 --epochs 40 --batch-size 16 --lr 0.001 --quiet)
WEIGHTS=src/hemascope/models/weights
mkdir -p "$W"
# each field's bag = the folder of white cells cut out of it (layout (a)); split = the wbc split
if has taleqani; then
python scripts/make_taleqani_bag_labels.py --data "$DATA" --cells "$CELLS" --out "$W/taleqani_bags.csv"

TAL_DATA="Taleqani Hospital B-ALL peripheral-blood fields (Aria, Ghaderzadeh et al. 2021); each field a bag of the white cells cut out of it by scripts/prepare_cell_data.py at 0.444 um/px (measured from red cells)"
TAL_SPLIT="field split: benchmarks/slide_splits/taleqani_fields.csv (follows the wbc model's seed-0 field split: no test field seen by the cell model)"
TAL_LIC="weights: BSD-3-Clause (hemascope); trained on Taleqani ALL (upstream licence not verified; research use only)"
for method in attention mean instance; do
  case $method in
    attention) name=taleqani-all; loss=ce ;;
    mean) name=taleqani-all-mean; loss=ce ;;
    instance) name=taleqani-all-cells; loss=gce ;;
  esac
  hemascope train bags --labels "$W/taleqani_bags.csv" --root "$CELLS" \
    --classes b-all --mpp 0.444 --instances all --skip-empty --cache "$W/taleqani_wbc.npz" \
    --cell-model wbc --members "$MEMBERS" \
    --method "$method" --loss "$loss" --name "$name" --version 0.2.0 --min-instances 1 \
    --min-sample 1 --training-data "$TAL_DATA" --training-data "$TAL_SPLIT" --licence "$TAL_LIC" \
    --description "B-ALL stage (Benign/Early/Pre/Pro) of a peripheral-blood field from its white cells ($method bag model; research use only)" \
    "${COMMON[@]}" --out "$W/$name"
  cp "$W/$name/$name.json" "$W/$name/$name.safetensors" "$WEIGHTS/"
done
# attention + mean averaged (not bundled: no better on the test fields than mean pooling alone)
python scripts/make_bag_ensemble.py --models "$W/taleqani-all/taleqani-all.json" \
  "$W/taleqani-all-mean/taleqani-all-mean.json" --cache "$W/taleqani_wbc.npz" \
  --labels "$W/taleqani_bags.csv" --name taleqani-all-combined --version 0.2.0 \
  --out "$W/taleqani-all-combined"
fi

# the SYNTHETIC/DEMO cell model the demo AML models read (and `hemascope demo` classifies with)
if has demo; then
python scripts/make_demo_cell_model.py --out "$W/wbc-demo" --threads 1 \
  --widths 8,16,32,64 --epochs 12 --install
fi

if has aml; then
AML_DATA="SYNTHETIC/DEMO: hemascope.synthetic.render_cell patients (scripts/make_synthetic_aml_bags.py, seed 0); test patients use unseen domain-shift settings"
for method in attention mean instance; do
  case $method in
    attention) name=aml-subtype-demo; loss=ce ;;
    mean) name=aml-subtype-demo-mean; loss=ce ;;
    instance) name=aml-subtype-demo-cells; loss=gce ;;
  esac
  hemascope train bags --labels "$AML/labels.csv" --classes aml --mpp 0.5 --instances all \
    --skip-empty --cache "$W/aml_all_wbc_demo.npz" --cell-model wbc-demo --members "$MEMBERS" \
    --calibration subsampled --method "$method" --loss "$loss" --name "$name" \
    --version 0.2.0 --min-instances 5 --demo --training-data "$AML_DATA" \
    --licence "weights: BSD-3-Clause (hemascope); synthetic data" \
    --description "SYNTHETIC/DEMO AML genetic subtype from the bag of white cells ($method bag model on the embeddings of the SYNTHETIC/DEMO cell model wbc-demo); not trained on patients; research use only" \
    "${AML_OPTS[@]}" --out "$W/$name"
  if [ "$method" != instance ]; then cp "$W/$name/$name.json" "$W/$name/$name.safetensors" "$WEIGHTS/"; fi
done
fi
