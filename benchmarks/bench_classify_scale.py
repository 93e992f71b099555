"""Cell classes without ``--mpp``: the pooled scale against per-picture estimates and the true µm/px.

Each DeepAPL test **patient** goes through :func:`hemascope.classify.classify_images` as one
``hemascope classify Patient_XX/`` call (card defaults: label shift + blast rule) three ways:

- ``given``: ``--mpp 0.21`` (the data set's µm/px);
- ``pooled``: no ``--mpp`` (what the command does: per-picture estimates of
  :func:`hemascope.classify.cell_scale.picture_scale` pooled over the pictures of one pixel size,
  :mod:`hemascope.segment.batch_scale`);
- ``per picture``: no ``--mpp``, each picture at its own estimate (an estimator returning plain
  floats is not pooled);
- the same two with the red cells alone (:func:`hemascope.segment.estimate_mpp`, the estimator
  before the cell's scale head).

With ``--closeups`` each crop is first cut to its central 22 µm and resampled to 120 px (the
120-px close-ups of other labs; 0.184 µm/px), as ``bench_scale.py --closeups`` cuts them.

Scores as in ``bench_classify_adaptation.py``. Usage::

    python benchmarks/bench_classify_scale.py --work /tmp/hemascope_cells --threads 2 [--closeups]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_classify_adaptation import scores  # noqa: E402

CLOSEUP_PX = 120
CLOSEUP_SIDE = int(round(22.0 / 0.21))  # px of the central 22 µm of a 0.21-µm/px crop


def close_up(path: str) -> np.ndarray:
    """The crop's central 22 µm resampled to 120 px."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    left, top = (image.width - CLOSEUP_SIDE) // 2, (image.height - CLOSEUP_SIDE) // 2
    cut = image.crop((left, top, left + CLOSEUP_SIDE, top + CLOSEUP_SIDE))
    return np.asarray(cut.resize((CLOSEUP_PX, CLOSEUP_PX), Image.Resampling.LANCZOS))


def _index(name: str) -> int:
    """The position of an array item in its call (``classify_images`` names it ``<array i>``)."""
    return int(name.removeprefix("<array ").removesuffix(">"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--closeups", action="store_true", help="120-px close-ups of the crops' centres")
    args = ap.parse_args()

    from hemascope.classify import classify_images
    from hemascope.classify.cell_scale import picture_scale
    from hemascope.models import load_model
    from hemascope.segment import estimate_mpp

    torch.set_num_threads(args.threads)
    loaded = load_model("wbc", device="cpu")
    table = pd.read_csv(args.work / "deepapl_test.csv")
    truth_mpp = 0.21
    if args.closeups:
        table["path"] = [close_up(p) for p in table["path"]]  # arrays, 120 px
        truth_mpp = 0.21 * CLOSEUP_SIDE / CLOSEUP_PX
    ways = {
        "given": {"mpp": truth_mpp},
        "pooled (red cells and the cell: the default)": {"mpp": None},
        "per picture (red cells and the cell)": {"mpp": None, "estimate": lambda image: float(picture_scale(image))},
        "pooled, red cells only": {"mpp": None, "estimate": estimate_mpp},
        "per picture, red cells only": {"mpp": None, "estimate": lambda image: float(estimate_mpp(image))},
    }
    print("| scale | cells | macro-F1 shared | N/L/M/E | blast recall | mature → blast | µm/px used: median (5–95 %) | within ±15 % |")
    print("|---|---|---|---|---|---|---|---|")
    for name, options in ways.items():
        truth, pred, used = [], [], []
        for _, part in table.groupby("group", sort=True):
            out = classify_images(list(part["path"]), loaded, device="cpu", **options)
            kept = part.iloc[[_index(n) for n in out.table["path"]]] if args.closeups else (
                part.set_index("path").loc[out.table["path"]])
            truth.extend(kept["class"])
            pred.extend(out.table["class"].replace({"unclassified": "smudge"}))
            used.extend(out.table["mpp"].astype(float))
        s = scores(np.asarray(truth), np.asarray(pred))
        u = np.asarray(used)
        print(f"| {name} | {s['n']} | {s['macro_f1_shared']:.3f} | {s['macro_f1_nlme']:.3f} | "
              f"{s.get('blast_recall', float('nan')):.3f} | {s['mature_called_blast']:.3f} | "
              f"{np.median(u):.3f} ({np.percentile(u, 5):.3f}–{np.percentile(u, 95):.3f}) | "
              f"{np.mean(np.abs(u / truth_mpp - 1) <= 0.15):.3f} |", flush=True)


if __name__ == "__main__":
    main()
