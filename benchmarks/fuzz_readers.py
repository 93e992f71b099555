"""Fuzz corpus for every reader: seeded mutations, each in a guarded worker, one command.

Usage::

    nice -n 10 python benchmarks/fuzz_readers.py [--cases 1300] [--seed 2026] [--timeout 10]
        [--memory-gib 6] [--work DIR] [--out FILE]

Writes small valid seeds of every format hemascope reads (TIFF, BigTIFF, OME-TIFF, SVS, JPEG
strips, planar one-row strips, OME-Zarr v0.4/v0.5, PNG, JPEG, QuPath GeoJSON, model cards,
analysis configs), makes ``--cases`` seeded mutations spread evenly over them (byte flips,
truncations, TIFF tag values and counts, next-IFD loops, JSON structure and hostile values, zarr
metadata, chunks replaced by links to ``/dev/zero``, FIFOs, links outside the store, zstd frames
claiming 2**40 bytes, renamed chunk keys), and opens and reads each in a worker process limited
to ``--memory-gib`` of address space growth; a case over ``--timeout`` seconds is a hang.
Prints (and writes) per-format counts of ok / documented / undocumented / hang / crash, the
slowest case and the workers' peak RSS. The mutations live in ``tests/io/fuzz_cases.py`` (the
CI fuzz test uses the same code with fewer cases).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io"))

import fuzz_cases  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1300)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--memory-gib", type=float, default=6.0)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="hemascope-fuzz-"))
    seeds = fuzz_cases.write_seeds(work / "seeds")
    cases = fuzz_cases.make_cases(seeds, work / f"cases-{args.seed}", args.cases, args.seed)
    start = time.perf_counter()
    outcomes = fuzz_cases.run_cases(cases, args.timeout, args.memory_gib)
    summary = fuzz_cases.summarize(outcomes)
    summary.update(seed=args.seed, timeout_s=args.timeout, memory_gib=args.memory_gib,
                   wall_s=time.perf_counter() - start)
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if not summary["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
