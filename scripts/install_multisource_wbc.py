"""Turn a ``train_multisource.py`` result (weights + JSON) into a registry model (card + weights).

Usage::

    python scripts/install_multisource_wbc.py --run OUT/final_long --name wbc --version 0.5.0 \
        --out src/hemascope/models/weights [--threshold T --layers K]

A new ``wbc`` needs its scale head retrained (``scripts/train_scale_head.py``): the head reads the
network's features, and loading it checks the weights' sha256.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file

from hemascope.models import ModelCard, build_model, save_model
from hemascope.train.class_maps import REJECT_CLASSES

TRAINING_DATA = [
    "PBC (Acevedo et al. 2020, Data in Brief 30:105474; Mendeley snkd93bnjr; CC BY 4.0), CellaVision DM96, MGG, 0.105 um/px measured from red cells",
    "DeepAPL discovery cohort (Sidhom et al. 2021, npj Precision Oncology 5:38; Johns Hopkins; no open licence stated: research use, images not redistributed), CellaVision, 0.21 um/px, 57 of 82 patients for training; technologists' classes mapped by hemascope.train.class_maps (diagnosis never used)",
    "Taleqani Hospital B-ALL fields (Aria, Ghaderzadeh et al. 2021), cells cut by scripts/prepare_cell_data.py at 0.444 um/px, Early/Pre/Pro field label inherited as blast (noisy), 1,390 training cells",
    "splits: benchmarks/splits/*.csv (seed 0, 70/15/15; PBC by image, Taleqani by field, DeepAPL by patient)",
    "recipe: scripts/train_multisource.py (class-first domain-second balanced sampling with class share ~ sqrt(count), lab augmentation incl. white balance, illumination, blur, low resolution, noise, scale +-25 %, tight framing; per-crop background white balance; CE)",
    "0.5.0: the average of the weights of 0.4.0 and of 0.4.0 fine-tuned 1,000 steps x 1,024 crops (AdamW, lr 1e-3, "
    "cosine; best validation step 600) with restaining added (hemascope.train.restain: half the crops given a random "
    "stain between CellaVision MGG and the Taleqani fields' blue-grey one), so that the stain is less of a cue for "
    "blast; the fine-tune's Taleqani crops re-cut by the current find_cells on the same field split (3,000 training cells)",
]
LICENCE = (
    "weights: BSD-3-Clause (hemascope); trained on PBC (CC BY 4.0), DeepAPL (Johns Hopkins, research use, "
    "no open licence stated) and Taleqani ALL (upstream licence not verified); research use only"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="OUT/NAME without suffix")
    ap.add_argument("--name", default="wbc")
    ap.add_argument("--version", default="0.5.0")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threshold", type=float)
    ap.add_argument("--layers", type=int)
    args = ap.parse_args()
    result = json.loads(args.run.with_suffix(".json").read_text())
    cfg = result["config"]
    widths = [int(w) for w in cfg["widths"].split(",")]
    reference = {}
    if args.threshold is not None:
        reference = {
            "threshold": args.threshold,
            "layers": args.layers,
            "calibration": "1.25 x the largest first-layer BatchNorm divergence of a held-out batch of "
            "the training sources through the user's path (BENCHMARKS.md, 'Restained')",
        }
    card = ModelCard(
        name=args.name,
        version=args.version,
        classes=list(result["classes"]),
        input_size=48,
        mpp=0.5,
        arch_params={"widths": widths},
        temperature=float(result["temperature"]),
        training_data=TRAINING_DATA,
        licence=LICENCE,
        metrics={
            "val_macro_f1_selection": result["best_val_macro_f1"],
            "test": {
                d: {
                    k: v[k]
                    for k in (
                        "n",
                        "accuracy",
                        "macro_f1",
                        "macro_f1_shared_normal",
                        "blast_recall",
                        "mature_called_blast",
                    )
                }
                for d, v in result["test"].items()
            },
        },
        description=(
            "White-cell type + blast classifier for single-cell crops, trained on three sources "
            "(PBC, DeepAPL, Taleqani); 'smudge' is a reject output (reported as unclassified). "
            "Research use only."
        ),
        preprocess={"white_balance": "background", "pad": "background", "chroma": "420"},
        reject_classes=list(REJECT_CLASSES),
        domain_reference=reference,
    )
    module = build_model(card.architecture, len(card.classes), card.arch_params)
    module.load_state_dict(load_file(str(args.run.with_suffix(".safetensors"))))
    print(save_model(module.eval(), card, args.out))
    if args.name == "wbc":  # the scale head reads these weights' features: it must be retrained on them
        print("now retrain the scale head: python scripts/train_scale_head.py --work WORK "
              f"--out {args.out}/wbc-scale.safetensors (loading checks that it matches)")


if __name__ == "__main__":
    main()
