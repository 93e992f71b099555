"""The exit-code and output contract of the commands (docs/cli.md): 0 ok, 1 some inputs failed,
2 user mistake — one line, no traceback, output locations checked before any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "a_file").write_text("x")
    return tmp_path / "a_file" / "out"


def _read_only_place(tmp_path: Path) -> Path:
    """A folder new files cannot be created in (a read-only one; /proc where root ignores modes)."""
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ro / "out"
    return Path("/proc/hemascope-not-writable/out")


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if any analysis or rendering starts."""
    import hemascope.distributed
    import hemascope.pipeline
    import hemascope.synthetic

    def boom(*args, **kwargs):
        raise AssertionError("computation started before the output location was checked")

    monkeypatch.setattr(hemascope.distributed, "analyze_cohort", boom)
    monkeypatch.setattr(hemascope.pipeline, "analyze_slide", boom)
    monkeypatch.setattr(hemascope.synthetic, "make_smear", boom)


@pytest.mark.parametrize("where", [_under_a_file, _read_only_place], ids=["under-a-file", "read-only"])
@pytest.mark.parametrize("command", ["analyze", "demo", "make-sample"])
def test_unwritable_output_is_one_line_and_exit_2_before_any_work(command, where, tmp_path, cli, capsys,
                                                                   sample_path, no_compute):
    out = where(tmp_path)
    argv = {
        "analyze": ["analyze", sample_path, "--out", out, "--quiet"],
        "demo": ["demo", "--out", out, "--quiet"],
        "make-sample": ["make-sample", out / "s.ome.tif", "--size", "256", "--quiet"],
    }[command]
    assert cli(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hemascope: error:") and "Traceback" not in err


def test_batch_with_one_bad_slide_exits_1_and_keeps_the_good_one(small_slide, cli, tmp_path, capsys):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00" + b"\x00" * 64)  # a TIFF header and nothing behind it
    assert cli("analyze", small_slide, bad, "--out", tmp_path / "out", "--quiet") == 1
    rows = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("slide")
    assert rows.loc[str(small_slide), "status"] == "done"
    assert rows.loc[str(bad), "status"] == "failed" and rows.loc[str(bad), "error"]
    assert (tmp_path / "out" / "small" / "exports" / "EXPORTED").is_file()
    err = capsys.readouterr().err
    assert f"FAILED  {bad}" in err and "Traceback" not in err


def test_every_slide_unusable_exits_2(cli, tmp_path, capsys):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a slide at all")
    assert cli("analyze", bad, "--out", tmp_path / "out", "--quiet") == 2
    assert "Traceback" not in capsys.readouterr().err


def test_missing_slide_file_is_refused_before_any_work(cli, tmp_path, capsys, no_compute):
    assert cli("analyze", tmp_path / "typo.svs", "--out", tmp_path / "out") == 2
    assert "not found" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_resume_never_turns_a_failed_slide_into_done(small_slide, cli, tmp_path, monkeypatch, capsys):
    """The bug: exports failed after the result was saved, and --resume then said the slide was done."""
    import hemascope.export.report_figure as report_figure

    def broken_png(*args, **kwargs):
        raise RuntimeError("disk full while drawing the report")

    out = tmp_path / "out"
    monkeypatch.setattr(report_figure, "write_report_png", broken_png)
    assert cli("analyze", small_slide, "--out", out, "--quiet") == 1
    assert pd.read_csv(out / "summary.csv").iloc[0]["status"] == "failed"
    assert cli("analyze", small_slide, "--out", out, "--resume", "--quiet") == 1  # still failing
    assert pd.read_csv(out / "summary.csv").iloc[0]["status"] == "failed"
    monkeypatch.undo()
    assert cli("analyze", small_slide, "--out", out, "--resume", "--quiet") == 0
    assert pd.read_csv(out / "summary.csv").iloc[0]["status"] == "done"  # exports written now
    assert (out / "small" / "exports" / "report.png").is_file()
    assert cli("analyze", small_slide, "--out", out, "--resume", "--quiet") == 0
    assert pd.read_csv(out / "summary.csv").iloc[0]["status"] == "resumed"
    # resuming a finished folder with other settings is refused, not silently answered
    capsys.readouterr()
    assert cli("analyze", small_slide, "--out", out, "--resume", "--cell-model", "blast", "--quiet") == 2
    assert "other settings" in capsys.readouterr().err


def test_mpp_hint_names_an_option_of_analyze(blank_png, cli, tmp_path, capsys):
    from hemascope.cli.main import build_parser

    assert cli("analyze", blank_png, "--out", tmp_path, "--quiet") == 2
    err = capsys.readouterr().err
    assert "--mpp" in err and "Traceback" not in err
    parser = build_parser()
    args = parser.parse_args(["analyze", str(blank_png), "--out", str(tmp_path), "--mpp", "0.5"])
    assert args.mpp == 0.5


def _closed_pipe_run(*argv: str) -> subprocess.CompletedProcess:
    """Run ``hemascope ARGV`` with stdout a pipe whose reader is already gone (``| head -0``)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "hemascope.cli.main", *argv], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)


@pytest.mark.parametrize("argv", [("info", "--json", "SAMPLE"), ("info", "SAMPLE"), ("models",),
                                  ("models", "--json")], ids=" ".join)
def test_broken_pipe_ends_quietly(argv, sample_path):
    proc = _closed_pipe_run(*[str(sample_path) if a == "SAMPLE" else a for a in argv])
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "Error" not in proc.stderr


@pytest.mark.slow  # the demo analyses the sample slide
def test_info_models_make_sample_and_demo_with_defaults(cli, sample_path, field_png, tmp_path, capsys):
    assert cli("info", sample_path) == 0
    assert cli("info", field_png) == 0
    assert cli("info", "--json", field_png) == 0
    assert cli("models") == 0
    assert cli("make-sample", tmp_path / "s.ome.tif", "--size", "512", "--quiet") == 0
    capsys.readouterr()
    assert cli("demo", "--out", tmp_path / "demo", "--quiet") == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC/DEMO" in out and "Subtype truth" in out
    assert (tmp_path / "demo" / "exports" / "report.png").is_file()


def test_user_mistakes_in_info_and_models_are_one_line(cli, tmp_path, capsys):
    assert cli("info", tmp_path / "nothing.svs") == 2
    assert cli("models", "no-such-model") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("hemascope: error:") for line in err)


@pytest.mark.parametrize("command", ["classify", "segment", "analyze", "predict-bags", "train-cells"])
def test_a_pixel_size_in_other_units_is_one_line_and_exit_2(command, blank_png, cli, tmp_path, capsys):
    """``--mpp 100`` (nm/px given as µm/px) made `classify` resample a 300-px picture to 60,000 px
    (killed for memory) and `segment` report 26 "cells"; now every command refuses it."""
    (tmp_path / "lab.csv").write_text(f"path,class\n{blank_png},neutrophil\n")
    argv = {
        "classify": ["classify", blank_png, "--out", tmp_path / "p.csv"],
        "segment": ["segment", blank_png, "--out", tmp_path / "s"],
        "analyze": ["analyze", blank_png, "--out", tmp_path / "a"],
        "predict-bags": ["predict-bags", tmp_path, "--out", tmp_path / "b.csv"],
        "train-cells": ["train", "cells", "--train", tmp_path / "lab.csv", "--out", tmp_path / "t"],
    }[command]
    assert cli(*argv, "--mpp", "100", "--quiet") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "100 µm/px is no microscope pixel size" in err[0], err


@pytest.mark.parametrize("command", ["classify", "predict-bags", "evaluate-segmentation"])
def test_a_table_named_without_csv_or_parquet_is_refused_before_any_work(command, field_png, cli, tmp_path,
                                                                        capsys, monkeypatch):
    """``classify FOLDER --out results`` classified every picture, then failed writing the table."""
    import hemascope.classify
    import hemascope.segment.evaluation
    import hemascope.train.bags_predict

    def boom(*args, **kwargs):
        raise AssertionError("computation started before the table name was checked")

    monkeypatch.setattr(hemascope.classify, "classify_images", boom)
    monkeypatch.setattr(hemascope.train.bags_predict, "predict_bag_sources", boom)
    monkeypatch.setattr(hemascope.segment.evaluation, "evaluate_mask_folder", boom)
    argv = {
        "classify": ["classify", field_png, "--out", tmp_path / "results", "--quiet"],
        "predict-bags": ["predict-bags", tmp_path, "--out", tmp_path / "bags.tsv", "--quiet"],
        "evaluate-segmentation": ["evaluate", "segmentation", tmp_path, tmp_path, "--out", tmp_path / "s.xlsx"],
    }[command]
    assert cli(*argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must end in .csv or .parquet" in err[0], err
