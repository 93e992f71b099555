"""Does ``predict-bags --model apl`` give the same answer at another resolution, and how fast is it?

The hidden cohort holds CellaVision crops at their original ≈0.105 µm/px; DeepAPL's shared copy is
2× downsampled (0.21 µm/px). This makes a test copy of some patients in a temporary folder with
every crop upsampled 2× (150 → 300 px, JPEG q95) and compares, patient by patient,

- the originals at ``--mpp 0.21`` with the upsampled copies at ``--mpp 0.105``,
- the originals at a wrong scale (``--mpp`` 0.21 × 0.8 … 1.25: what an estimate off by that much
  would do),

and times the largest bag. Prints one table; nothing is written in the repository.

Usage::

    python benchmarks/bench_apl_scale.py [--data /work/shared/data/deepapl] [--patients 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from hemascope.models import load_model
from hemascope.slide import load_bag_model
from hemascope.train.bags_predict import predict_bag_sources

FACTORS = (0.8, 0.9, 1.1, 1.25)


def upsampled_copy(src: Path, dst: Path) -> Path:
    """Every image of ``src`` resized 2× (bicubic) into ``dst`` (same sub-folders), JPEG q95."""
    for path in src.rglob("*.jpg"):
        out = dst / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            im.convert("RGB").resize((im.width * 2, im.height * 2), Image.Resampling.BICUBIC).save(
                out, quality=95
            )
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/deepapl"))
    parser.add_argument("--patients", type=int, default=16)
    parser.add_argument("--model", default="apl")
    args = parser.parse_args()
    torch.set_num_threads(2)
    bag_model = load_bag_model(args.model)
    cell_model = load_model(bag_model.card.embedding_model, device="cpu")
    table = pd.read_csv(args.data / "patients.csv")
    half = args.patients // 2
    chosen = pd.concat(
        [table[table.diagnosis == "APL"].head(half), table[table.diagnosis == "AML"].head(half)]
    )
    originals = [args.data / p for p in chosen["patient"]]

    def run(sources, mpp):
        start = time.perf_counter()
        out = predict_bag_sources(sources, bag_model, cell_model, mpp=mpp, device="cpu")
        return out.set_index(out["bag"].map(lambda b: Path(b).name)), time.perf_counter() - start

    base, seconds = run(originals, 0.21)
    n_cells = int(base["n_cells"].sum())
    print(
        f"{len(originals)} patients, {n_cells} cells at 0.21 µm/px: {seconds:.1f} s "
        f"({n_cells / seconds:.0f} cells/s, 2 threads)"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="hemascope_apl_scale_") as tmp:
        copies = [upsampled_copy(src, Path(tmp) / src.name) for src in originals]
        up, seconds = run(copies, 0.105)
        print(f"upsampled 2x (300x300 px) at 0.105 µm/px: {seconds:.1f} s")
        rows.append(("2x upsampled, --mpp 0.105", up))
    for factor in FACTORS:
        rows.append(
            (
                f"originals, --mpp {0.21 * factor:.3f} ({factor:g}x)",
                run(originals, 0.21 * factor)[0],
            )
        )
    print("| input | max abs. change in P(APL) | median change | same call |")
    print("|---|---|---|---|")
    for label, other in rows:
        delta = (other["prob_APL"] - base["prob_APL"]).abs()
        same = (other["predicted"] == base["predicted"]).mean()
        print(f"| {label} | {delta.max():.3f} | {np.median(delta):.3f} | {same:.0%} |")
    biggest = table.assign(n=[len(list((args.data / p).rglob("*.jpg"))) for p in table.patient])
    big = biggest.sort_values("n").iloc[-1]
    _, seconds = run([args.data / big.patient], 0.21)
    print(f"largest bag ({big.patient}, {big.n} cells): {seconds:.1f} s end to end")


if __name__ == "__main__":
    main()
