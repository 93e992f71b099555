"""Throughput of cell classification (cells/s): model alone vs crops-from-slide + model.

Usage::

    nice -n 10 python benchmarks/bench_classify_throughput.py --model wbc --threads 2

Builds an in-memory 4096² field at 0.25 µm/px with ``--cells`` random centroids, then times in
one run (side by side, same machine load): the forward pass alone on ready crops, and
``predict_cells`` (crops cut from the dask-backed slide by the loader thread + forward), with and
without TTA. On a GPU machine pass ``--device cuda``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch

from hemascope.classify import predict_cells, resolve_device, run_model
from hemascope.io import slide_from_array
from hemascope.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="wbc")
    ap.add_argument("--cells", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    image = rng.integers(150, 256, (4096, 4096, 3), dtype=np.uint8)
    slide = slide_from_array(image, mpp=0.25)
    cells = pd.DataFrame(
        {
            "row": rng.uniform(0, 4096, args.cells),
            "col": rng.uniform(0, 4096, args.cells),
        }
    )
    loaded = load_model(args.model, device=resolve_device(args.device))
    size = loaded.card.input_size
    crops = rng.integers(0, 256, (args.cells, size, size, 3), dtype=np.uint8)
    out = {
        "model": loaded.label,
        "device": str(loaded.device),
        "threads": args.threads,
        "cells": args.cells,
    }
    run_model(loaded, [crops[:64]], 64)  # warm-up
    t0 = time.perf_counter()
    run_model(
        loaded,
        (crops[s : s + args.batch_size] for s in range(0, args.cells, args.batch_size)),
        args.cells,
    )
    out["model_only_cells_per_s"] = round(args.cells / (time.perf_counter() - t0), 1)
    t0 = time.perf_counter()
    predict_cells(slide, cells, loaded, device=loaded.device, batch_size=args.batch_size)
    out["predict_cells_cells_per_s"] = round(args.cells / (time.perf_counter() - t0), 1)
    n_tta = max(args.batch_size, args.cells // 4)
    t0 = time.perf_counter()
    predict_cells(
        slide,
        cells.iloc[:n_tta],
        loaded,
        device=loaded.device,
        batch_size=args.batch_size,
        tta=True,
    )
    out["predict_cells_tta_cells_per_s"] = round(n_tta / (time.perf_counter() - t0), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
