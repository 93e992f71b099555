#!/usr/bin/env bash
# Train, evaluate and bundle the slide-level (bag) models (see docs/bags.md).
# Usage: scripts/train_bag_models.sh [WORK_DIR]
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
WEIGHTS=src/hemascope/models/weights
mkdir -p "$W"
# each field's bag = the folder of white cells cut out of it (layout (a)); split = the wbc split
python scripts/make_taleqani_bag_labels.py --data "$DATA" --cells "$CELLS" --out "$W/taleqani_bags.csv"
COMMON=(--cell-model wbc --threads "${THREADS:-1}" --seed 0 --epochs "$EPOCHS" --batch-size 16 --lr 0.003 --quiet)

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
    --method "$method" --loss "$loss" --name "$name" --version 0.1.1 --min-instances 1 \
    --min-sample 64 --training-data "$TAL_DATA" --training-data "$TAL_SPLIT" --licence "$TAL_LIC" \
    --description "B-ALL stage (Benign/Early/Pre/Pro) of a peripheral-blood field from its white cells ($method bag model; research use only)" \
    "${COMMON[@]}" --out "$W/$name"
  cp "$W/$name/$name.json" "$W/$name/$name.safetensors" "$WEIGHTS/"
done

AML_DATA="SYNTHETIC/DEMO: hemascope.synthetic.render_cell patients (scripts/make_synthetic_aml_bags.py, seed 0); test patients use unseen domain-shift settings"
for method in attention mean instance; do
  case $method in
    attention) name=aml-subtype-demo; loss=ce ;;
    mean) name=aml-subtype-demo-mean; loss=ce ;;
    instance) name=aml-subtype-demo-cells; loss=gce ;;
  esac
  hemascope train bags --labels "$AML/labels.csv" --classes aml --mpp 0.5 --instances all \
    --skip-empty --cache "$W/aml_all_wbc.npz" --method "$method" --loss "$loss" --name "$name" \
    --version 0.1.0 --min-instances 5 --demo --training-data "$AML_DATA" \
    --licence "weights: BSD-3-Clause (hemascope); synthetic data" \
    --description "SYNTHETIC/DEMO AML genetic subtype from the bag of white cells ($method bag model; the real-data wbc model calls few synthetic cells blasts); not trained on patients; research use only" \
    "${COMMON[@]}" --out "$W/$name"
  if [ "$method" != instance ]; then cp "$W/$name/$name.json" "$W/$name/$name.safetensors" "$WEIGHTS/"; fi
done
