"""Cohort runs: a real 2-process LocalCluster gives the single-process results; failures are recorded."""

from __future__ import annotations

import os

import pandas as pd

from hemascope.cli.main import main
from hemascope.distributed import SUMMARY_FILE, analyze_cohort
from hemascope.results import SlideResult


def _compare(a: SlideResult, b: SlideResult) -> None:
    exact = ["id", "region", "row", "col", "class"]
    pd.testing.assert_frame_equal(a.cells[exact], b.cells[exact])
    prob = [c for c in a.cells.columns if c.startswith("prob_")]
    pd.testing.assert_frame_equal(a.cells[prob], b.cells[prob], atol=1e-5, rtol=0)
    assert a.differential["counts"] == b.differential["counts"]


def _model_loads() -> int:
    from hemascope.pipeline import cached_cell_model

    return cached_cell_model.cache_info().misses


def test_local_cluster_matches_single_process(smear_paths, config, tmp_path):
    from distributed import Client, LocalCluster

    broken = tmp_path / "broken.ome.tif"
    broken.write_bytes(b"not a slide")
    slides = [*smear_paths[:2], broken]
    single = analyze_cohort(slides, tmp_path / "single", config, export=False)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)
    try:
        pids = client.run(os.getpid)  # real worker processes, not threads of this one
        assert len(set(pids.values()) - {os.getpid()}) == 2
        multi = analyze_cohort(slides, tmp_path / "multi", config, client=client, export=True)
        on_disk = pd.read_csv(tmp_path / "multi" / SUMMARY_FILE)
        loads = client.run(_model_loads)  # each worker loaded the cell model once for all its regions
        assert max(loads.values()) == 1
        # resume on the cluster: finished slides are not recomputed
        again = analyze_cohort(slides[:2], tmp_path / "multi", config, client=client, resume=True)
    finally:
        client.close()
        cluster.close()
    assert list(again["status"]) == ["resumed", "resumed"]
    assert list(single["status"]) == ["done", "done", "failed"] == list(multi["status"])
    assert "Error" in multi["error"].iloc[2]
    pd.testing.assert_series_equal(single["n_cells"], multi["n_cells"])
    for name in ("smear0", "smear1"):
        _compare(SlideResult.load(tmp_path / "single" / name), SlideResult.load(tmp_path / "multi" / name))
        assert (tmp_path / "multi" / name / "exports" / "report.png").is_file()
    assert list(on_disk["status"]) == ["done", "done", "failed"]


def test_cli_analyze_with_config_file(smear_paths, config, tmp_path, capsys):
    cfg = config.save(tmp_path / "run.toml")
    code = main(["analyze", str(smear_paths[0]), "--out", str(tmp_path / "out"), "--config", str(cfg), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "1/1 slides analysed" in printed and "research use only" in printed
    result = SlideResult.load(tmp_path / "out" / "smear0")
    assert result.config == config
    assert (tmp_path / "out" / "smear0" / "exports" / "cells.geojson").is_file()
    bad = tmp_path / "bad.toml"
    bad.write_text('segmenter = "magic"\n')
    assert main(["analyze", str(smear_paths[0]), "--out", str(tmp_path / "x"), "--config", str(bad)]) == 2
    assert "segmenter" in capsys.readouterr().err


def test_cohort_refuses_a_bag_model_of_another_cell_model_before_any_slide(smear_paths, tmp_path, capsys):
    # the bundled demo subtype model reads wbc-demo embeddings; the real wbc model is configured
    cfg = tmp_path / "mismatch.toml"
    cfg.write_text('cell_model = "wbc"\nslide_model = "aml-subtype-demo"\n')
    out = tmp_path / "out"
    code = main(["analyze", *map(str, smear_paths[:2]), "--out", str(out), "--config", str(cfg), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "use cell model 'wbc-demo'" in err and len(err.splitlines()) == 1
    assert not out.exists()  # refused before any slide was started
