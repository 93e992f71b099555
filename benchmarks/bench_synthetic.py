"""Benchmark: generating synthetic smear slides of growing size — wall time and peak resident memory.

Each size runs in a fresh subprocess (so peak RSS is that run's own), writing a pyramidal OME-TIFF
with :func:`hemascope.synthetic.make_smear` into ``benchmarks/_work/``; the file is deleted after.

Usage::

    nice -n 10 python benchmarks/bench_synthetic.py --sizes 10000 50000 [--workers 1 2] [--mpp 0.5]

Prints one markdown table row per run: size, µm/px, workers, wall seconds, CPU seconds (the
generator and its worker processes; the fair figure on a shared machine), Mpx per CPU-second, peak
RSS of the generator and of its workers, file size, truth rows and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, resource, sys, threading, time, os
import psutil
from hemascope.synthetic import SmearSpec, make_smear
size, mpp, workers, path = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
proc = psutil.Process()
peak = {"self": 0, "children": 0}
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak["self"] = max(peak["self"], proc.memory_info().rss)
        kids = sum(c.memory_info().rss for c in proc.children(recursive=True))
        peak["children"] = max(peak["children"], kids)
        time.sleep(0.2)
t = threading.Thread(target=sample, daemon=True)
t.start()
start = time.perf_counter()
truth = make_smear(path, SmearSpec(size=(size, size), mpp=mpp, seed=1), workers=workers)
seconds = time.perf_counter() - start
stop.set(); t.join()
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
peak["self"] = max(peak["self"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps({"size": size, "mpp": mpp, "workers": workers, "seconds": seconds, "cpu_seconds": cpu,
                  "load": os.getloadavg()[0],
                  "peak_rss_mib": peak["self"] / 2**20, "workers_rss_mib": peak["children"] / 2**20,
                  "file_mb": os.path.getsize(path) / 1e6, "truth_rows": len(truth.cells)}))
"""


def run_one(size: int, mpp: float, workers: int, work: Path) -> dict:
    """Generate one slide in a subprocess and return its measurements."""
    path = work / f"bench_synthetic_{size}.ome.tif"
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(size), str(mpp), str(workers), str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        for p in work.glob(f"bench_synthetic_{size}*"):
            p.unlink(missing_ok=True)


def main() -> None:
    """Run the benchmark and print markdown rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--mpp", type=float, default=0.5)
    args = parser.parse_args()
    work = Path(__file__).parent / "_work"
    work.mkdir(exist_ok=True)
    print(
        "| size (px) | µm/px | workers | wall (s) | CPU (s) | Mpx per CPU-s | peak RSS (MiB) "
        "| workers' RSS (MiB) | file (MB) | truth rows | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for workers in args.workers:
            r = run_one(size, args.mpp, workers, work)
            mpx = size * size / 1e6 / r["cpu_seconds"]
            print(
                f"| {size}² | {r['mpp']} | {workers} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} "
                f"| {mpx:.2f} | {r['peak_rss_mib']:.0f} | {r['workers_rss_mib']:.0f} "
                f"| {r['file_mb']:.0f} | {r['truth_rows']} | {r['load']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
