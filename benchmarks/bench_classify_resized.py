"""Cell classes of crops resized to one pixel size, without ``--mpp``: pooled scale or not.

Many public data sets store cells cut at different sizes and resized to one pixel size, so each
picture has its own µm/px. Held-out PBC test crops (platelets left out) are cut to a centred box
of ``--box`` of the crop and resized to ``--px`` px, then classified as ``hemascope classify
FOLDER`` does (:func:`hemascope.classify.classify_images`, no ``mpp``), twice: with the scale
estimates pooled over the pictures of one size whatever their spread (before,
``POOL_MAX_SPREAD`` = ∞) and with the current rule (:mod:`hemascope.segment.batch_scale`).
Usage::

    python benchmarks/bench_classify_resized.py --work /tmp/hemascope_cells --n 200
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

NLME = ["neutrophil", "lymphocyte", "monocyte", "eosinophil"]


def _macro_f1(y: np.ndarray, p: np.ndarray, labels: list[str]) -> float:
    f1 = []
    for c in labels:
        tp, fp, fn = ((p == c) & (y == c)).sum(), ((p == c) & (y != c)).sum(), ((p != c) & (y == c)).sum()
        f1.append(2 * tp / max(2 * tp + fp + fn, 1))
    return float(np.mean(f1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hemascope_cells"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--box", type=float, nargs=2, default=(0.45, 1.0))
    ap.add_argument("--px", type=int, default=256)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()

    import hemascope.segment.batch_scale as batch_scale
    from hemascope.classify import classify_images
    from hemascope.classify.images import read_cell_image
    from hemascope.models import load_model

    table = pd.read_csv(args.work / "pbc_test.csv")
    table = table[table["class"] != "platelet"].sample(args.n, random_state=args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (path, label, mpp) in enumerate(zip(table.path, table["class"], table.mpp, strict=True)):
            image = read_cell_image(path)
            side = int(min(image.shape[:2]) * np.random.default_rng(args.seed * 1000 + i).uniform(*args.box))
            r0, c0 = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
            out = Path(tmp) / f"{i:04d}.png"
            Image.fromarray(image[r0 : r0 + side, c0 : c0 + side]).resize((args.px, args.px), Image.BILINEAR).save(out)
            rows.append((str(out), label, mpp * side / args.px))
        truth = pd.DataFrame(rows, columns=["path", "class", "mpp"])
        model = load_model("wbc")
        rule = batch_scale.POOL_MAX_SPREAD
        for name, spread in (("pooled whatever the spread (before)", float("inf")), ("now", rule)):
            batch_scale.POOL_MAX_SPREAD = spread
            got = classify_images(list(truth.path), model).table
            batch_scale.POOL_MAX_SPREAD = rule
            m = truth.merge(got[["path", "class", "mpp"]].rename(columns={"class": "pred", "mpp": "used"}), on="path")
            y, p = m["class"].to_numpy(), m["pred"].to_numpy()
            nlme = np.isin(y, NLME)
            within = float(np.mean(np.abs(np.log(m.used / m.mpp)) < np.log(1.15)))
            print(f"{name}: {len(m)} cells, macro-F1 {_macro_f1(y, p, sorted(set(y))):.3f}, "
                  f"N/L/M/E {_macro_f1(y[nlme], p[nlme], NLME):.3f}, scale within ±15 % {within:.3f}, "
                  f"called blast {np.mean(p == 'blast'):.3f}")


if __name__ == "__main__":
    main()
