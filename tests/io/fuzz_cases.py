"""Fuzz cases run in guarded worker processes (mutations: ``fuzz_mutations``).

Shared by the CI fuzz test (``tests/io/test_fuzz.py``, a few hundred cases) and the benchmark
(``benchmarks/fuzz_readers.py``, any number). Each case is a mutated copy of a small valid file
(TIFF/BigTIFF/OME-TIFF/SVS/strips/planar, OME-Zarr v0.4/v0.5, PNG/JPEG, QuPath GeoJSON, model
card, analysis config). A worker process (address space and CPU limited with ``setrlimit``) opens
and reads each case; the parent gives every case a wall-clock bound and restarts a worker that
hangs or dies. Outcomes: ``ok`` (read without error), ``documented`` (a ``HemascopeError``),
``undocumented`` (any other exception), ``hang`` (over the time bound), ``crash`` (worker died).
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fuzz_mutations import KINDS, SLIDE_KINDS, USER_KINDS, Case, make_cases, write_seeds

__all__ = ["KINDS", "SLIDE_KINDS", "USER_KINDS", "Case", "Outcome", "exercise", "make_cases",
           "run_cases", "summarize", "write_seeds"]


@dataclass
class Outcome:
    """What reading one case did."""

    kind: str
    mutation: str
    status: str
    detail: str
    seconds: float
    max_rss_mb: float = 0.0


# --- what a case does -----------------------------------------------------------------------
def exercise(case: Case) -> None:
    """Open and read one case the way users do (raises what hemascope raises)."""
    path = Path(case.path)
    if case.kind == "_selftest-hang":  # checks of the harness itself
        time.sleep(3600)
    elif case.kind == "_selftest-raise":
        raise KeyError(case.path)
    elif case.kind == "geojson":
        from hemascope.export import read_geojson

        read_geojson(path)
    elif case.kind == "card":
        from hemascope.errors import ModelIntegrityError
        from hemascope.models.card import ModelCard
        from hemascope.models.card_validation import validate_card_dict

        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError, UnicodeDecodeError) as exc:
            raise ModelIntegrityError(f"unreadable card: {type(exc).__name__}") from exc
        ModelCard.from_dict(validate_card_dict(data))
    elif case.kind == "config":
        from hemascope.config import AnalysisConfig

        AnalysisConfig.from_toml(path)
    else:
        import numpy as np

        from hemascope.io import open_slide

        with open_slide(path) as slide:
            np.asarray(slide.levels[-1])
            rows, cols = slide.shape
            for r, c in ((0, 0), (rows // 2, cols // 3), (rows - 100, cols - 100)):
                slide.read_region(0, r, c, 128, 160)
            np.asarray(slide.levels[0][: min(rows, 300), : min(cols, 300)])
            slide.thumbnail(256)


# --- worker and runner ----------------------------------------------------------------------
def _virtual_memory() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


PRELOAD = ("hemascope.config", "hemascope.export", "hemascope.io.open", "hemascope.models.card")
"""Modules a case may use, imported before the clock and the memory limit start (card: torch)."""


def _worker(memory_bytes: int, preload: tuple[str, ...] = PRELOAD) -> None:
    import importlib
    import resource

    for module in preload:
        importlib.import_module(module)
    from hemascope.errors import HemascopeError

    limit = _virtual_memory() + memory_bytes  # the limit is on growth beyond the imports
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    for line in sys.stdin:
        case = Case(**json.loads(line))
        start = time.perf_counter()
        try:
            exercise(case)
            status, detail = "ok", ""
        except HemascopeError as exc:
            status, detail = "documented", f"{type(exc).__name__}: {exc!s:.160}"
        except BaseException as exc:  # noqa: BLE001 - the point is to see every other exception
            status, detail = "undocumented", f"{type(exc).__name__}: {exc!s:.160}"
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out = Outcome(case.kind, case.mutation, status, detail, time.perf_counter() - start, rss)
        sys.stdout.write(json.dumps(asdict(out)) + "\n")
        sys.stdout.flush()


class _Worker:
    def __init__(self, memory_bytes: int, preload: tuple[str, ...]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r});"
             f" import fuzz_cases; fuzz_cases._worker({memory_bytes}, {tuple(preload)!r})"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            bufsize=1,
        )
        # wait until the worker has imported hemascope (not part of any case's time)
        self.ready = False

    def run(self, case: Case, timeout: float) -> Outcome:
        start = time.perf_counter()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(asdict(case)) + "\n")
        self.proc.stdin.flush()
        limit = timeout + (30.0 if not self.ready else 0.0)  # first case includes imports
        ready, _, _ = select.select([self.proc.stdout], [], [], limit)
        if ready:
            line = self.proc.stdout.readline()
            if line:
                self.ready = True
                return Outcome(**json.loads(line))
            code = self.proc.wait()
            return Outcome(case.kind, case.mutation, "crash", f"worker exit {code}",
                           time.perf_counter() - start)
        self.kill()
        return Outcome(case.kind, case.mutation, "hang", f"no answer in {timeout:.0f} s",
                       time.perf_counter() - start)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def run_cases(
    cases: list[Case],
    timeout: float = 10.0,
    memory_gib: float = 3.0,
    preload: tuple[str, ...] = PRELOAD,
) -> list[Outcome]:
    """Run every case in a guarded worker process (restarted after a hang or crash).

    Parameters
    ----------
    cases
        From :func:`make_cases`.
    timeout
        Wall-clock bound per case, seconds (a case over it is a ``hang``).
    memory_gib
        Address space the worker may grow by after its imports (a blow-up surfaces as
        ``MemoryError`` or a crash).
    preload
        Modules the worker imports before its limits apply (default: all a case may use).
    """
    memory = int(memory_gib * 2**30)
    worker = _Worker(memory, preload)
    outcomes = []
    try:
        for case in cases:
            if not worker.alive():
                worker = _Worker(memory, preload)
            outcome = worker.run(case, timeout)
            outcomes.append(outcome)
            if outcome.status in ("hang", "crash"):
                worker.kill()
                worker = _Worker(memory, preload)
    finally:
        worker.kill()
    return outcomes


def summarize(outcomes: list[Outcome]) -> dict:
    """Counts per kind and status, the slowest case, peak worker memory, the failures."""
    table: dict[str, dict[str, int]] = {}
    for o in outcomes:
        row = table.setdefault(o.kind, {"cases": 0, "ok": 0, "documented": 0, "undocumented": 0,
                                        "hang": 0, "crash": 0})
        row["cases"] += 1
        row[o.status] += 1
    bad = [asdict(o) for o in outcomes if o.status in ("undocumented", "hang", "crash")]
    return {
        "per_kind": table,
        "total": len(outcomes),
        "undocumented": sum(o.status == "undocumented" for o in outcomes),
        "hangs": sum(o.status == "hang" for o in outcomes),
        "crashes": sum(o.status == "crash" for o in outcomes),
        "slowest_case_s": max((o.seconds for o in outcomes), default=0.0),
        "peak_worker_rss_mb": max((o.max_rss_mb for o in outcomes), default=0.0),
        "failures": bad,
    }
