"""Whole-slide cell finding: time, peak memory and detection on synthetic pyramidal slides.

Each size runs in its own process (fresh peak-RSS counter): a missing slide is first written by
make_smear in a separate process (not timed, not in the peak), then ``find_cells`` (smear mask,
candidates, classical segmentation) is timed. Slides are reused from ``--out``.

    flock /tmp/hemascope_bench.lock nice -n 0 python benchmarks/bench_segment_slide.py \
        --sizes 10000 50000 --wbc-density 20 --threads 2 --out /tmp/seg_slides
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import time
from pathlib import Path


def _slide_path(out: Path, size: int, wbc_density: float) -> Path:
    return out / f"smear_{size}_{wbc_density:g}.ome.tif"


def _make(size: int, out: Path, wbc_density: float) -> None:
    from hemascope.synthetic import SmearSpec, make_smear

    make_smear(_slide_path(out, size, wbc_density), SmearSpec(size=size, mpp=0.5, seed=1, wbc_density=wbc_density))


def _one(size: int, out: Path, wbc_density: float, threads: int, segmenter: str, queue) -> None:
    from hemascope.io import open_slide
    from hemascope.segment import find_cells

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open_slide(_slide_path(out, size, wbc_density)) as slide:
        t0, c0 = time.perf_counter(), time.process_time()
        seg = find_cells(slide, num_workers=threads, segmenter=segmenter)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    queue.put(({
        "size": size, "wbc_density": wbc_density, "threads": threads, "segmenter": segmenter,
        "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_segment_mib": round(rss_before / 1024, 1),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }, seg.cells[["row", "col"]].to_numpy()))


def _score(result: dict, found, out: Path) -> dict:
    """Detection against the truth table, read here (in the parent) so it is not in the peak."""
    import pandas as pd

    from hemascope.segment.metrics import match_points

    path = _slide_path(out, result["size"], result["wbc_density"])
    cells = pd.read_csv(path.with_name(path.name.replace(".ome.tif", ".cells.csv")), usecols=["class", "row", "col"])
    wbc = cells[cells["class"] != "platelet"][["row", "col"]].to_numpy()
    score = match_points(found, wbc, 8.0)
    return {**result, "white_cells": len(wbc), "found": len(found),
            "recall": round(score.recall, 4), "precision": round(score.precision, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000])
    parser.add_argument("--wbc-density", type=float, default=150.0, help="white cells per mm²")
    parser.add_argument("--threads", type=int, default=2, help="dask threads of find_cells")
    parser.add_argument("--segmenter", nargs="+", default=["classical"], help="backends, run one after another")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/_work/segment"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    for size in args.sizes:
        path = _slide_path(args.out, size, args.wbc_density)
        if not (path.is_file() and path.with_name(path.name.replace(".ome.tif", ".cells.csv")).is_file()):
            maker = ctx.Process(target=_make, args=(size, args.out, args.wbc_density))
            maker.start()
            maker.join()
        for segmenter in args.segmenter:
            queue = ctx.Queue()
            proc = ctx.Process(target=_one, args=(size, args.out, args.wbc_density, args.threads, segmenter, queue))
            proc.start()
            result, found = queue.get()
            proc.join()
            print(json.dumps(_score(result, found, args.out)), flush=True)


if __name__ == "__main__":
    main()
