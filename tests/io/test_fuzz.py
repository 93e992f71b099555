"""Seeded fuzzing of every reader: mutated files give documented errors only, in bounded time.

390 mutated inputs (30 per format: TIFF, BigTIFF, OME-TIFF, SVS, JPEG strips, planar strips,
OME-Zarr v0.4/v0.5, PNG, JPEG, GeoJSON, model cards, configs) are opened and read in a worker
process with an address-space limit; each case must finish within 5 s. See
``tests/io/fuzz_cases.py``; ``benchmarks/fuzz_readers.py`` runs larger corpora.
"""

import fuzz_cases


def test_mutated_inputs_raise_only_documented_errors(tmp_path):
    seeds = fuzz_cases.write_seeds(tmp_path / "seeds")
    cases = fuzz_cases.make_cases(seeds, tmp_path / "cases", 30 * len(fuzz_cases.KINDS), seed=2026)
    outcomes = fuzz_cases.run_cases(cases, timeout=5.0, memory_gib=2.0)
    summary = fuzz_cases.summarize(outcomes)
    assert summary["total"] == len(cases)
    assert summary["failures"] == [], summary["failures"][:5]
    for kind, row in summary["per_kind"].items():  # the mutations do break things
        assert row["documented"] > 0, kind


def test_the_harness_reports_undocumented_errors_and_hangs(tmp_path):
    """The guard itself: a raw exception and a hang are seen as such, and work goes on after."""
    seeds = fuzz_cases.write_seeds(tmp_path / "seeds")
    cases = [
        fuzz_cases.Case("_selftest-raise", "x", "raise"),
        fuzz_cases.Case("_selftest-hang", "x", "hang"),
        fuzz_cases.Case("png", str(seeds["png"]), "seed"),
    ]
    outcomes = fuzz_cases.run_cases(cases, timeout=2.0, preload=("hemascope.io.open",))
    assert [o.status for o in outcomes] == ["undocumented", "hang", "ok"]
