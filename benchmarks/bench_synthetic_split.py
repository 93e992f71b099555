"""Benchmark: where the time of ``make_smear`` goes — rendering tiles vs writing the pyramid.

Measured side by side in one process on the same slide (CPU seconds, so the ratio survives a
shared machine): (a) rendering every level-0 tile through :class:`SmearTileSource`, (b)
``hemascope.io.write_pyramidal_tiff`` of the same pixels already in memory, (c) ``make_smear``.

Usage::

    nice -n 10 python benchmarks/bench_synthetic_split.py --size 4096 [--mpp 0.5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    return time.process_time()


def main() -> None:
    """Run the three measurements and print a markdown table."""
    import numpy as np

    from hemascope.io import write_pyramidal_tiff
    from hemascope.synthetic import SmearSpec, SmearTileSource, make_smear

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--mpp", type=float, default=0.5)
    args = parser.parse_args()
    spec = SmearSpec(size=(args.size, args.size), mpp=args.mpp, seed=1)
    n = args.size
    image = np.empty((n, n, 3), dtype=np.uint8)
    source = SmearTileSource(spec)
    t0 = _cpu()
    for r in range(0, n, 512):
        for c in range(0, n, 512):
            image[r : r + 512, c : c + 512] = source.read(r, c, min(512, n - r), min(512, n - c))
    render = _cpu() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = _cpu()
        write_pyramidal_tiff(Path(tmp) / "w.ome.tif", image, mpp=args.mpp)
        write = _cpu() - t0
        t0 = _cpu()
        make_smear(Path(tmp) / "m.ome.tif", spec)
        total = _cpu() - t0
    mpx = n * n / 1e6
    print("| step | CPU (s) | Mpx per CPU-s | share of make_smear |")
    print("|---|---|---|---|")
    for name, sec in (
        ("render level-0 tiles", render),
        ("write_pyramidal_tiff (from memory)", write),
        ("make_smear (render + write + truth)", total),
    ):
        print(f"| {name} | {sec:.1f} | {mpx / sec:.2f} | {sec / total:.0%} |")


if __name__ == "__main__":
    main()
