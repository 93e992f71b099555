"""Throughput of cell classification (cells/s): model alone, crops-from-slide + model, image files.

Usage (timed figures: one benchmark at a time on the shared machine)::

    flock /tmp/hemascope_bench.lock nice -n 0 python benchmarks/bench_classify_throughput.py \
        --model wbc --threads 2 --images /tmp/hemascope_cells/pbc_test.csv

Builds an in-memory 4096² field at 0.25 µm/px with ``--cells`` random centroids, then times in
one run (side by side, same machine load), each with and without TTA (8 flips/rotations):

- ``model_only``: the forward pass alone on ready crops (``run_model``);
- ``predict_cells``: crops cut from the dask-backed slide by the loader thread + forward (+ the
  card's per-batch decision: label-shift EM and blast rule; ``predict_cells_plain_decision``: the
  same with both off);
- ``predict_cells_read_twice``: the same with every batch read twice, as cells of the stain that
  carried the blast shortcut are (:mod:`hemascope.classify.stain`);
- ``classify_images`` (with ``--images``, a cell table CSV): what ``hemascope classify`` does per
  file — decode, resample to the model's µm/px, forward.

Each figure is the median of ``--repeat`` timings; the load average before and after is recorded.
On a GPU machine pass ``--device cuda``. Results: ``benchmarks/results/classify_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hemascope.classify import classify_images, predict_cells, resolve_device, run_model
from hemascope.classify.stain import STAINS
from hemascope.io import slide_from_array
from hemascope.models import load_model


def _rate(n: int, fn: Callable[[], object], repeat: int) -> float:
    """Median cells/s of ``repeat`` calls of ``fn`` that each handle ``n`` cells."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(n / statistics.median(times), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="wbc")
    ap.add_argument("--cells", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--images", type=Path, help="cell table CSV (path, mpp) for classify_images")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent / "results" / "classify_throughput.json",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    image = rng.integers(150, 256, (4096, 4096, 3), dtype=np.uint8)
    slide = slide_from_array(image, mpp=0.25)
    cells = pd.DataFrame(
        {"row": rng.uniform(0, 4096, args.cells), "col": rng.uniform(0, 4096, args.cells)}
    )
    loaded = load_model(args.model, device=resolve_device(args.device))
    size = loaded.card.input_size
    crops = rng.integers(0, 256, (args.cells, size, size, 3), dtype=np.uint8)
    out = {
        "model": loaded.label,
        "device": str(loaded.device),
        "threads": args.threads,
        "cells": args.cells,
        "repeat": args.repeat,
        "load_average_before": os.getloadavg(),
    }
    run_model(loaded, [crops[:64]], 64)  # warm-up

    def batches(n: int):
        return (crops[s : min(s + args.batch_size, n)] for s in range(0, n, args.batch_size))

    n_tta = max(args.batch_size, args.cells // 4)  # TTA costs 8 forward passes per cell
    for tta, n in ((False, args.cells), (True, n_tta)):
        suffix = "_tta" if tta else ""
        out[f"model_only{suffix}_cells_per_s"] = _rate(
            n, lambda n=n, tta=tta: run_model(loaded, batches(n), n, tta=tta), args.repeat
        )
        out[f"predict_cells{suffix}_cells_per_s"] = _rate(
            n,
            lambda n=n, tta=tta: predict_cells(
                slide,
                cells.iloc[:n],
                loaded,
                device=loaded.device,
                batch_size=args.batch_size,
                tta=tta,
            ),
            args.repeat,
        )
    # the card's per-batch decision (label-shift EM + blast rule) switched off, same run
    out["predict_cells_plain_decision_cells_per_s"] = _rate(
        args.cells,
        lambda: predict_cells(
            slide,
            cells,
            loaded,
            device=loaded.device,
            batch_size=args.batch_size,
            adapt_priors=False,
            blast_min=0.0,
        ),
        args.repeat,
    )
    # cells whose stain is read twice (classify.stain: blue-grey slides), same run: a rule naming
    # every reference stain makes each batch of these random crops read twice
    rule = loaded.card.preprocess.get("stain_reading")
    loaded.card.preprocess["stain_reading"] = {"stains": list(STAINS), "also_as": "cellavision"}
    out["predict_cells_read_twice_cells_per_s"] = _rate(
        args.cells,
        lambda: predict_cells(slide, cells, loaded, device=loaded.device, batch_size=args.batch_size),
        args.repeat,
    )
    if rule is None:
        del loaded.card.preprocess["stain_reading"]
    else:
        loaded.card.preprocess["stain_reading"] = rule
    if args.images is not None:
        table = pd.read_csv(args.images)
        table = table.iloc[: args.cells]
        paths, mpp = table["path"].tolist(), float(table["mpp"].median())
        out["images"] = {"table": str(args.images), "n": len(paths), "mpp": mpp}
        for tta in (False, True):
            n = len(paths) if not tta else min(len(paths), n_tta)
            out[f"classify_images{'_tta' if tta else ''}_cells_per_s"] = _rate(
                n,
                lambda n=n, tta=tta: classify_images(
                    paths[:n],
                    loaded,
                    mpp,
                    device=loaded.device,
                    batch_size=args.batch_size,
                    tta=tta,
                ),
                args.repeat,
            )
    out["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
