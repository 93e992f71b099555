"""Cohort benchmark: N small synthetic slides in-process, on 1 and on 2 dask workers.

Checks that the dask runs give the single-process results (positions and classes exactly,
probabilities to 1e-5) and reports wall times. Slides are generated once into benchmarks/_work/.

    nice -n 10 python benchmarks/bench_cohort.py --slides 200 --size 512 > benchmarks/_work/cohort.log 2>&1
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

WORK = Path(__file__).resolve().parent / "_work" / "cohort"


def make_slides(n: int, size: int, tile: int = 256) -> list[Path]:
    """``n`` deterministic synthetic smears (varied seeds and subtypes), generated once.

    Written as pyramidal OME-TIFFs with ``tile``-pixel tiles, so a 512 px slide has 4 regions of 256.
    """
    from hemascope.classes import AML_SUBTYPES
    from hemascope.io import write_pyramidal_tiff
    from hemascope.synthetic import SmearSpec, render_field

    folder = WORK / f"slides_{size}_t{tile}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"s{i:04d}.ome.tif"
        if not path.is_file():
            spec = SmearSpec(size=(size, size), mpp=0.5, seed=1000 + i, subtype=AML_SUBTYPES[i % len(AML_SUBTYPES)],
                             wbc_density=300.0)
            image, _ = render_field(spec, masks=False)
            write_pyramidal_tiff(path, image, mpp=spec.mpp, tile_size=tile, n_levels=2)
        paths.append(path)
    return paths


def untrained_models(folder: Path) -> dict[str, str]:
    """Small randomly initialised cell and bag models (used when the bundled ones are not installed)."""
    import torch

    from hemascope.classes import AML_SUBTYPES, CELL_CLASSES
    from hemascope.models import ModelCard, build_model, save_model
    from hemascope.models.mil import build_bag_model

    torch.manual_seed(0)
    card = ModelCard(name="bench-wbc", version="0", classes=list(CELL_CLASSES), input_size=64, mpp=0.5,
                     arch_params={})  # the default CellNet widths (16, 32, 64, 128)
    cell = save_model(build_model("cellnet", len(CELL_CLASSES), card.arch_params), card, folder / "cell")
    bag_card = ModelCard(kind="bag", name="bench-bag", version="0", classes=list(AML_SUBTYPES), architecture="attention",
                            embedding_model="bench-wbc", embedding_dim=128, input_size=64, mpp=0.5, instances="all",
                            min_instances=3, arch_params={"hidden": 32}, demo=True)
    bag = save_model(build_bag_model("attention", 128, len(AML_SUBTYPES), hidden=32), bag_card, folder / "bag")
    return {"cell_model": str(cell), "slide_model": str(bag)}


def bench_config(region_size: int, config_path: str | None = None):
    """The benchmark settings: a TOML file, else the bundled models, else untrained ones of that kind."""
    from hemascope.config import AnalysisConfig, load_config
    from hemascope.models import list_models

    if config_path:
        base = load_config(config_path).to_dict()
    elif any(card.name == "wbc" for card in list_models()):
        base = AnalysisConfig().to_dict()
    else:
        print("bundled models not installed: using untrained models of the same kind", flush=True)
        base = {**AnalysisConfig().to_dict(), **untrained_models(WORK / "models")}
    return AnalysisConfig.from_dict({**base, "region_size": region_size, "device": "cpu"})


def run(paths: list[Path], out: Path, config, workers: int | None) -> tuple[float, pd.DataFrame]:
    """Analyse the cohort into a fresh ``out``; returns (wall seconds, summary)."""
    from hemascope.distributed import analyze_cohort

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    summary = analyze_cohort(paths, out, config, workers=workers, export=False)
    return time.perf_counter() - t0, summary


def compare(ref: Path, other: Path, names: list[str]) -> dict[str, float]:
    """Exact equality of positions, classes and slide-level labels; the largest probability differences."""
    from hemascope.results import SlideResult

    mismatched, max_prob, max_slide_prob = 0, 0.0, 0.0
    for name in names:
        a, b = SlideResult.load(ref / name), SlideResult.load(other / name)
        exact = ["id", "region", "row", "col", "class"]
        labels = [[(s.get("model"), s.get("label"), s.get("abstained")) for s in r.subtypes] for r in (a, b)]
        if (not a.cells[exact].equals(b.cells[exact]) or a.differential["counts"] != b.differential["counts"]
                or labels[0] != labels[1]):
            mismatched += 1
        prob = [c for c in a.cells.columns if c.startswith("prob_")]
        if len(a.cells) and len(a.cells) == len(b.cells):
            max_prob = max(max_prob, float(np.abs(a.cells[prob].to_numpy() - b.cells[prob].to_numpy()).max()))
        for sa, sb in zip(a.subtypes, b.subtypes, strict=False):  # unequal lengths: counted above
            pa, pb = sa.get("probabilities") or {}, sb.get("probabilities") or {}
            for k in pa.keys() & pb.keys():
                if pa[k] is not None and pb[k] is not None:
                    max_slide_prob = max(max_slide_prob, abs(pa[k] - pb[k]))
    return {"slides_differing": mismatched, "max_abs_prob_diff": max_prob,
            "max_abs_slide_prob_diff": max_slide_prob}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slides", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--region-size", type=int, default=256)
    parser.add_argument("--config", help="TOML settings (default: bundled models on CPU)")
    args = parser.parse_args()

    import torch

    from hemascope.distributed import slide_folder_names

    torch.set_num_threads(1)  # one thread per process: the in-process run is the 1-worker baseline
    config = bench_config(args.region_size, args.config)
    print(config.to_toml(), flush=True)
    t0 = time.perf_counter()
    paths = make_slides(args.slides, args.size)
    print(f"slides ready in {time.perf_counter() - t0:.1f} s", flush=True)
    names = slide_folder_names(paths)
    outs = {}
    report = {"slides": args.slides, "size": args.size, "region_size": args.region_size}
    for label, workers in (("in_process", None), ("workers_1", 1), ("workers_2", 2)):
        outs[label] = WORK / f"out_{label}"
        seconds, summary = run(paths, outs[label], config, workers)
        report[f"{label}_s"] = round(seconds, 1)
        report[f"{label}_failed"] = int((summary["status"] != "done").sum())
        report[f"{label}_cells"] = int(summary["n_cells"].sum())
        print(label, round(seconds, 1), "s", flush=True)
    for label in ("workers_1", "workers_2"):
        report[f"{label}_vs_in_process"] = compare(outs["in_process"], outs[label], names)
    report["speedup_2_vs_1_workers"] = round(report["workers_1_s"] / report["workers_2_s"], 2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
