"""Whole-slide cell finding: time, peak memory and detection on synthetic pyramidal slides.

Each size runs in its own process (fresh peak-RSS counter): make_smear writes the slide (not
timed), then ``find_cells`` (smear mask, candidates, classical segmentation) is timed.

    nice -n 10 python benchmarks/bench_segment_slide.py --sizes 5000 10000 --out benchmarks/_work/segment
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path


def _one(size: int, out: Path, wbc_density: float, queue) -> None:
    from hemascope.io import open_slide
    from hemascope.segment import find_cells
    from hemascope.segment.metrics import match_points
    from hemascope.synthetic import SmearSpec, make_smear

    import pandas as pd

    path = out / f"smear_{size}_{wbc_density:g}.ome.tif"
    truth_csv = path.with_name(path.name.replace(".ome.tif", ".cells.csv"))
    if not (path.is_file() and truth_csv.is_file()):  # reuse a slide made by an earlier run
        make_smear(path, SmearSpec(size=size, mpp=0.5, seed=1, wbc_density=wbc_density), workers=2)
    cells = pd.read_csv(truth_csv)
    wbc = cells[cells["class"] != "platelet"]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # includes make_smear's peak
    with open_slide(path) as slide:
        t0, c0 = time.perf_counter(), time.process_time()
        seg = find_cells(slide)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    score = match_points(seg.cells[["row", "col"]].to_numpy(), wbc[["row", "col"]].to_numpy(), 8.0)
    queue.put({
        "size": size, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_segment_mib": round(rss_before / 1024, 1),
        "white_cells": len(wbc), "found": len(seg.cells),
        "recall": round(score.recall, 4), "precision": round(score.precision, 4),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000])
    parser.add_argument("--wbc-density", type=float, default=150.0, help="white cells per mm²")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/_work/segment"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    for size in args.sizes:
        queue = ctx.Queue()
        proc = ctx.Process(target=_one, args=(size, args.out, args.wbc_density, queue))
        proc.start()
        result = queue.get()
        proc.join()
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
