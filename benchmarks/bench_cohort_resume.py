"""Resume after ``kill -9`` at random points: nothing lost, nothing duplicated.

Each trial starts ``hemascope analyze`` on a cohort (alternately in-process and on 2 dask workers),
kills the whole process group with SIGKILL a random delay after its first region is saved, then
runs ``--resume`` to the end and compares every slide with an uninterrupted reference run: same
cells (positions and classes), no duplicated cell, every slide complete, and the regions finished
before the kill were not recomputed.

    cd benchmarks && nice -n 10 python bench_cohort_resume.py --trials 10 --slides 8 > _work/resume.log 2>&1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench_cohort import WORK, bench_config, make_slides

HEMASCOPE = [sys.executable, "-m", "hemascope.cli.main", "analyze", "--quiet", "--no-export"]


def analyze(paths: list[Path], out: Path, cfg: Path, extra: list[str]) -> subprocess.Popen:
    """Start ``hemascope analyze`` in its own process group."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [*HEMASCOPE, *map(str, paths), "--out", str(out), "--config", str(cfg), *extra]
    return subprocess.Popen(cmd, start_new_session=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def region_mtimes(out: Path) -> dict[str, int]:
    """Every finished region checkpoint with its modification time."""
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.glob("*/regions/region_*.parquet")}


def check(ref: Path, out: Path, names: list[str]) -> dict[str, int]:
    """Compare a resumed cohort with the reference: lost, duplicated and differing cells."""
    from hemascope.results import SlideResult

    lost = duplicated = differing = incomplete = 0
    for name in names:
        try:
            b = SlideResult.load(out / name)
        except Exception:  # noqa: BLE001 - counted, not raised
            incomplete += 1
            continue
        a = SlideResult.load(ref / name)
        duplicated += int(b.cells.duplicated(subset=["row", "col"]).sum())
        lost += max(0, len(a.cells) - len(b.cells))
        cols = ["row", "col", "class"]
        if len(a.cells) != len(b.cells) or not a.cells[cols].equals(b.cells[cols]):
            differing += 1
    return {"incomplete": incomplete, "lost": lost, "duplicated": duplicated, "slides_differing": differing}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--slides", type=int, default=12)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--region-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from hemascope.distributed import slide_folder_names

    rng = random.Random(args.seed)
    paths = make_slides(args.slides, args.size)
    names = slide_folder_names(paths)
    root = WORK / "resume"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    cfg = bench_config(args.region_size).save(root / "run.toml")
    t0 = time.perf_counter()
    ref = analyze(paths, root / "reference", cfg, [])
    ref.wait()
    full = time.perf_counter() - t0
    print(f"reference run: {full:.1f} s", flush=True)
    trials = []
    for trial in range(args.trials):
        mode = [] if trial % 2 == 0 else ["--workers", "2"]
        out = root / f"trial{trial}"
        delay = rng.uniform(0.0, 0.8) * full
        proc = analyze(paths, out, cfg, mode)
        while not region_mtimes(out) and proc.poll() is None:  # kill during the work, not the start-up
            time.sleep(0.05)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        before = region_mtimes(out)
        t1 = time.perf_counter()
        resume = analyze(paths, out, cfg, [*mode, "--resume"])
        _, err = resume.communicate()
        after = region_mtimes(out)
        recomputed = sum(1 for k, v in before.items() if after.get(k) != v)
        row = {
            "trial": trial,
            "mode": "workers=2" if mode else "in-process",
            "kill_after_first_region_s": round(delay, 2),
            "killed": killed,
            "regions_done_at_kill": len(before),
            "finished_regions_recomputed": recomputed,
            "resume_s": round(time.perf_counter() - t1, 1),
            "resume_exit": resume.returncode,
            **check(root / "reference", out, names),
        }
        if resume.returncode:
            row["stderr"] = err.decode(errors="replace")[-300:]
        trials.append(row)
        print(json.dumps(row), flush=True)
    bad = [t for t in trials if t["lost"] or t["duplicated"] or t["incomplete"] or t["slides_differing"] or t["finished_regions_recomputed"]]
    print(json.dumps({"trials": len(trials), "trials_with_problems": len(bad), "reference_s": round(full, 1)}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
