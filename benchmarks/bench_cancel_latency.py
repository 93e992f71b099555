"""Cancel latency inside one big region: time from setting ``cancel`` to the run stopping.

A synthetic smear of one region (``--size`` px square at 0.5 µm/px) is analysed to the end with
the bundled ``wbc`` model and the classical segmenter, twice (the second, warm run's stage times
are what a cancel had to wait for when a region's segmentation was not interruptible), then again
with a thread that sets the cancel event at each of ``--fractions`` of the warm run's time; the
latency is the time from ``set()`` to :class:`~hemascope.errors.Cancelled` reaching the caller.

    cd benchmarks && nice -n 10 python bench_cancel_latency.py --size 4096
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from hemascope.config import AnalysisConfig
from hemascope.errors import Cancelled
from hemascope.io import write_pyramidal_tiff
from hemascope.pipeline import analyze_slide
from hemascope.synthetic import SmearSpec, render_field


def make_slide(folder: Path, size: int, seed: int) -> Path:
    """One pyramidal OME-TIFF of a dense synthetic smear."""
    image, _ = render_field(SmearSpec(size=(size, size), mpp=0.5, seed=seed, wbc_density=400.0))
    path = folder / "big_region.ome.tif"
    write_pyramidal_tiff(path, image, mpp=0.5, tile_size=512)
    return path


def cancelled_after(path: Path, config: AnalysisConfig, delay: float) -> str:
    """What happened to a run cancelled ``delay`` s after it started, as one line."""
    cancel = threading.Event()
    set_at: list[float] = []

    def fire() -> None:
        set_at.append(time.perf_counter())
        cancel.set()

    t0 = time.perf_counter()
    timer = threading.Timer(delay, fire)
    timer.start()
    try:
        analyze_slide(path, config, cancel=cancel)
    except Cancelled:
        stopped = time.perf_counter()
        return f"cancel set at {set_at[0] - t0:.2f} s -> stopped {(stopped - set_at[0]) * 1000:.0f} ms later"
    finally:
        timer.cancel()
    return f"run finished at {time.perf_counter() - t0:.2f} s, before the cancel (at {delay:.2f} s) was asked"


def main() -> None:
    """Print the full run's stage times and the cancel latencies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.9])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = AnalysisConfig(region_size=args.size, device="cpu", slide_model="none")
    with tempfile.TemporaryDirectory() as tmp:
        path = make_slide(Path(tmp), args.size, args.seed)
        for run in ("cold", "warm"):
            t0 = time.perf_counter()
            result = analyze_slide(path, config)
            total = time.perf_counter() - t0
            stages = {k: round(v, 2) for k, v in result.provenance.get("timings_s", {}).items()}
            print(f"{run} full run: {total:.2f} s, {result.n_cells} cells, 1 region; stages (s) {stages}")
        for fraction in args.fractions:
            print(f"{fraction:.0%} of the warm run: {cancelled_after(path, config, fraction * total)}")


if __name__ == "__main__":
    main()
