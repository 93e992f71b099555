"""Blast figures and the stain-shortcut check, on the held-out splits.

Usage::

    nice -n 10 python benchmarks/bench_classify_blast.py --work /tmp/hemascope_cells \
        --blast /tmp/hemascope_cells/runs/blast/blast.json --wbc /tmp/hemascope_cells/runs/wbc/wbc.json

- ``blast`` model: false-positive rate on normal PBC test cells, recall on Taleqani test cells from
  B-ALL fields (noisy: not every cell in a B-ALL field is a blast), blast rate on Taleqani Benign-field cells;
- ``wbc`` model: the same three rates for its ``blast`` class;
- shortcut check: blast rate of PBC test lymphocytes before and after recolouring them to the
  Taleqani stain (LAB statistics of Taleqani test cells).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hemascope.classify import run_model
from hemascope.models import load_model
from hemascope.train import read_cell_table
from hemascope.train.augment import center_crop
from hemascope.train.datasets import load_crop_bank
from hemascope.train.stain_transfer import lab_statistics, transfer_stain


def _crops(table, card, cache):
    bank, failed = load_crop_bank(table, card, cache_dir=cache)
    assert not failed, failed[:3]
    import torch

    x = center_crop(torch.from_numpy(bank).permute(0, 3, 1, 2), card.input_size)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def _blast_rate(loaded, crops):
    batches = (crops[s : s + 256] for s in range(0, len(crops), 256))
    prob, _ = run_model(loaded, batches, len(crops))
    return float((prob.argmax(1) == loaded.classes.index("blast")).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument("--blast", default="blast")
    ap.add_argument("--wbc", default="wbc")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "classify_blast.json"
    )
    args = ap.parse_args()
    cache = args.work / "cache"
    pbc = read_cell_table(args.work / "pbc_test.csv")
    tal = read_cell_table(args.work / "taleqani_test.csv")
    results = {}
    for key in ("blast", "wbc"):
        loaded = load_model(getattr(args, key))
        card = loaded.card
        pbc_crops = _crops(pbc, card, cache)
        tal_crops = _crops(tal, card, cache)
        is_blast = (tal["class"] == "blast").to_numpy()
        lymph = pbc_crops[(pbc["class"] == "lymphocyte").to_numpy()]
        mean, std = lab_statistics(tal_crops[::5])
        results[key] = {
            "model": loaded.label,
            "fpr_pbc_test_all": _blast_rate(loaded, pbc_crops),
            "recall_taleqani_test_ball_fields": _blast_rate(loaded, tal_crops[is_blast]),
            "blast_rate_taleqani_test_benign_fields": _blast_rate(loaded, tal_crops[~is_blast]),
            "blast_rate_pbc_lymphocytes": _blast_rate(loaded, lymph),
            "blast_rate_pbc_lymphocytes_recoloured_to_taleqani": _blast_rate(
                loaded, transfer_stain(lymph, mean, std)
            ),
            "n": {
                "pbc_test": len(pbc),
                "taleqani_ball": int(is_blast.sum()),
                "taleqani_benign": int((~is_blast).sum()),
                "pbc_lymphocytes": len(lymph),
            },
        }
        print(json.dumps({key: results[key]}, indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
