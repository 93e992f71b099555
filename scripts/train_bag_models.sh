#!/usr/bin/env bash
# Train, evaluate and bundle the slide-level (bag) models (see docs/bags.md).
# Usage: [STAGES="taleqani demo aml"] scripts/train_bag_models.sh [WORK_DIR]
# Remakes every bundled slide-level model and the cell models whose embeddings they read:
#   taleqani-cells               4-class cell model (Benign/Early/Pre/Pro inherited from the field,
#                                GCE loss), fine-tuned from `wbc` on the training fields' cells
#                                (skipped when $W/taleqani-cells/taleqani-cells.json exists),
#   taleqani-all{,-mean,-cells}  on `taleqani-cells` embeddings (each a 5-seed ensemble),
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
# the instance model: every training-field cell labelled with its field's label (noisy), GCE,
# from the wbc weights (new 4-class head); the cells of the validation fields pick the epoch
for split in train val; do
  python -c 'import sys, pandas as pd; t = pd.read_csv(sys.argv[1]); t.assign(**{"class": t["field_label"]}).drop(columns="field_label").to_csv(sys.argv[2], index=False)' \
    "$CELLS/taleqani_$split.csv" "$W/taleqani_cells4_$split.csv"
done
if [ ! -f "$W/taleqani-cells/taleqani-cells.json" ]; then
  hemascope train cells --name taleqani-cells --version 0.1.0 --classes Benign,Early,Pre,Pro \
    --train "$W/taleqani_cells4_train.csv" --val "$W/taleqani_cells4_val.csv" --init wbc \
    --loss gce --stain-mix 0.5 --blur-p 0.5 --epochs 12 --lr 0.001 --seed 0 \
    --threads "${THREADS:-1}" --cache-dir "$CELLS/cache" --quiet \
    --training-data "Taleqani Hospital B-ALL peripheral-blood fields (Aria, Ghaderzadeh et al. 2021), white cells cut by scripts/prepare_cell_data.py at 0.444 um/px; each cell labelled with its field's label (Benign/Early/Pre/Pro: inherited, noisy), training fields only" \
    --training-data "field split: benchmarks/splits/taleqani_*.csv (the wbc model's seed-0 field split; no validation/test field seen)" \
    --licence "weights: BSD-3-Clause (hemascope); trained on Taleqani ALL (upstream licence not verified; research use only); initialised from wbc (PBC CC BY 4.0 + Taleqani)" \
    --description "B-ALL stage (Benign/Early/Pre/Pro) of a single white cell from a peripheral-blood field, trained on labels inherited from the field (GCE loss, fine-tuned from wbc); its embedding feeds the taleqani-all* bag models (research use only)" \
    --out "$W/taleqani-cells"
fi
cp "$W/taleqani-cells/taleqani-cells.json" "$W/taleqani-cells/taleqani-cells.safetensors" "$WEIGHTS/"

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
    --classes b-all --mpp 0.444 --instances all --skip-empty --cache "$W/taleqani_taleqani-cells.npz" \
    --cell-model taleqani-cells --members "$MEMBERS" \
    --method "$method" --loss "$loss" --name "$name" --version 0.3.0 --min-instances 1 \
    --min-sample 1 --training-data "$TAL_DATA" --training-data "$TAL_SPLIT" --licence "$TAL_LIC" \
    --description "B-ALL stage (Benign/Early/Pre/Pro) of a peripheral-blood field from its white cells ($method bag model; research use only)" \
    "${COMMON[@]}" --out "$W/$name"
  cp "$W/$name/$name.json" "$W/$name/$name.safetensors" "$WEIGHTS/"
done
# attention + mean averaged (not bundled: no better on the validation fields than attention MIL alone)
python scripts/make_bag_ensemble.py --models "$W/taleqani-all/taleqani-all.json" \
  "$W/taleqani-all-mean/taleqani-all-mean.json" --cache "$W/taleqani_taleqani-cells.npz" \
  --labels "$W/taleqani_bags.csv" --name taleqani-all-combined --version 0.3.0 \
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
