"""Cache a cell model's raw logits and embeddings on labelled cell images (the user's path).

Each image goes through what ``hemascope classify FOLDER --mpp M`` does (decode, resample from
its µm/px to the model's, background white balance/padding, chroma subsampling, forward pass),
so decision rules and adaptations can be tuned and measured on the cached outputs without
re-running the network. Usage::

    python scripts/cache_cell_logits.py --model wbc --table pbc_val.csv --out pbc_val.npz \
        [--mpp 0.1] [--threads 1]

The table is a cell CSV (``path``, ``class`` and, unless ``--mpp`` is given, ``mpp``; other
columns such as ``group``/``patient`` are kept). The ``.npz`` holds ``logits`` (uncalibrated),
``embeddings``, ``labels`` (class names), ``paths``, ``groups`` and the model's ``classes``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hemascope.classify.crops import crops_to_tensor
from hemascope.classify.images import load_cell_crops
from hemascope.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="wbc")
    ap.add_argument("--table", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--mpp", type=float, help="one µm/px for every image (else the mpp column)")
    ap.add_argument("--group-column", default="group")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, device="cpu")
    table = pd.read_csv(args.table)
    mpps = np.full(len(table), args.mpp) if args.mpp else table["mpp"].to_numpy(float)
    logits, embs, keep = [], [], []
    for mpp in np.unique(mpps):
        rows = np.flatnonzero(mpps == mpp)
        _, _, crops, failed, _ = load_cell_crops(list(table["path"].iloc[rows]), loaded.card, mpp)
        if failed:
            raise SystemExit(f"{len(failed)} images failed, e.g. {failed[0]}")
        with torch.inference_mode():
            for s in range(0, len(crops), args.batch_size):
                x = crops_to_tensor(np.stack(crops[s : s + args.batch_size]), loaded.card, "cpu")
                lo, em = loaded.module.forward_with_embedding(x)
                logits.append(lo.float().numpy())
                embs.append(em.float().numpy())
        keep.extend(rows)
    order = np.argsort(keep)
    kept = table.iloc[np.asarray(keep)[order]]
    groups = kept[args.group_column] if args.group_column in kept else pd.Series([""] * len(kept))
    np.savez_compressed(
        args.out,
        logits=np.concatenate(logits)[order],
        embeddings=np.concatenate(embs)[order],
        labels=np.asarray(kept["class"], dtype=str),
        paths=np.asarray(kept["path"], dtype=str),
        groups=np.asarray(groups, dtype=str),
        classes=np.asarray(loaded.card.classes),
        temperature=np.float32(loaded.card.temperature),
        model=np.asarray(loaded.label),
    )
    print(f"{args.out}: {len(kept)} cells, model {loaded.label}")


if __name__ == "__main__":
    main()
