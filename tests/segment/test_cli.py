"""``hemascope segment`` and ``hemascope evaluate segmentation`` end to end on synthetic images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from hemascope.cli.main import main
from hemascope.segment import CELL_COLUMNS


def test_segment_writes_tables_and_uint32_labels(tmp_path, blood_field):
    image, wbc, _ = blood_field
    Image.fromarray(image).save(tmp_path / "field.png")
    tifffile.imwrite(tmp_path / "small.tif", image[:512, :512])  # a camera's TIFF is a field too
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "field.png"), str(tmp_path / "small.tif"),
                 "--out", str(out), "--mpp", "0.5", "--quiet"]) == 0
    csv = pd.read_csv(out / "cells.csv")
    parquet = pd.read_parquet(out / "cells.parquet")
    assert len(csv) == len(parquet) > 0
    assert set(CELL_COLUMNS) <= set(csv.columns) and set(csv["source"].map(lambda s: s[-9:])) == {"field.png", "small.tif"}
    small = tifffile.imread(out / "small_cells.tif")
    assert small.shape == (512, 512) and small.max() == (csv["source"].str.endswith("small.tif")).sum()
    labels = tifffile.imread(out / "field_cells.tif")
    nuclei = tifffile.imread(out / "field_nuclei.tif")
    assert labels.dtype == np.uint32 and nuclei.dtype == np.uint32 and labels.shape == image.shape[:2]
    assert labels.max() == (csv["source"].str.endswith("field.png")).sum()


def test_evaluate_segmentation_on_mask_folder(tmp_path, capsys, blood_field):
    image, wbc, truth = blood_field
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    ids = set(wbc["id"])
    cell = np.isin(truth.cell_labels, list(ids))
    nucleus = np.isin(truth.nucleus_labels, list(ids))
    mask = np.where(nucleus, 255, np.where(cell, 128, 0)).astype(np.uint8)
    Image.fromarray(image[:512, :512]).save(tmp_path / "images" / "001.png")
    Image.fromarray(mask[:512, :512]).save(tmp_path / "masks" / "001.png")
    assert main(["evaluate", "segmentation", str(tmp_path / "images"), str(tmp_path / "masks"),
                 "--mpp", "0.5", "--out", str(tmp_path / "scores.csv")]) == 0
    text = capsys.readouterr().out
    assert "whole cell  Dice" in text
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert scores["cell_dice"].median() > 0.8 and scores["nucleus_dice"].median() > 0.7


def test_segment_slide_file_writes_label_pyramid(tmp_path):
    import zarr

    from hemascope.synthetic import SmearSpec, make_smear

    slide = tmp_path / "smear.ome.tif"
    truth = make_smear(slide, SmearSpec(size=1024, mpp=0.5, seed=4, wbc_density=500.0))
    out = tmp_path / "out"
    assert main(["segment", str(slide), "--out", str(out), "--labels", "--quiet"]) == 0
    cells = pd.read_parquet(out / "cells.parquet")
    wbc = truth.cells[truth.cells["class"] != "platelet"]
    assert len(cells) >= 0.9 * len(wbc) and (cells["mpp_source"] == "file").all()
    group = zarr.open_group(str(out / "smear.labels.ome.zarr"), mode="r")
    level0 = np.asarray(group["labels/cells/0"])
    assert level0.shape[-2:] == (1024, 1024) and int(level0.max()) == len(cells)
    assert "1" in group["labels/cells"]  # a pyramid, not a single level


def test_segment_goes_on_past_bad_inputs_and_records_the_scale(tmp_path, capsys, blood_field):
    image, _, _ = blood_field
    Image.fromarray(image[:384, :384]).save(tmp_path / "good.png")
    Image.fromarray(np.full((128, 128, 3), 255, np.uint8)).save(tmp_path / "blank.png")  # cannot be scaled
    (tmp_path / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    inputs = [str(tmp_path / n) for n in ("blank.png", "good.png", "broken.png")]
    assert main(["segment", *inputs, "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "blank.png" in captured.err and "broken.png" in captured.err and "2 of 3 inputs failed" in captured.err
    assert "estimated, confidence" in captured.out
    table = pd.read_csv(out / "cells.csv")
    assert len(table) > 0 and set(table["source"].map(lambda s: s[-8:])) == {"good.png"}
    assert (table["mpp_source"] == "estimated").all()
    assert table["mpp"].iloc[0] == pytest.approx(0.5, rel=0.15)
    assert table["mpp_confidence"].between(0, 1).all() and table["mpp_low_confidence"].dtype == bool
    # one row per input: the failed ones with their reason, the good one with its labels and scale
    images = pd.read_csv(out / "images.csv").set_index("source")
    assert images.loc[inputs[0], "status"] == "failed" and images.loc[inputs[2], "status"] == "failed"
    assert isinstance(images.loc[inputs[2], "error"], str)
    good = images.loc[inputs[1]]
    assert good["status"] == "done" and good["n_cells"] == table["source"].eq(inputs[1]).sum()
    assert good["cell_labels"] == "good_cells.tif" and good["nucleus_labels"] == "good_nuclei.tif"
    assert good["mpp"] == pytest.approx(table["mpp"].iloc[0]) and good["mpp_source"] == "estimated"
    # --mpp overrides the estimate
    assert main(["segment", str(tmp_path / "good.png"), "--out", str(out), "--mpp", "0.5", "--quiet"]) == 0
    table = pd.read_csv(out / "cells.csv")
    assert (table["mpp_source"] == "user").all() and (table["mpp"] == 0.5).all()
    assert (table["mpp_confidence"] == 1.0).all() and not table["mpp_low_confidence"].any()


def test_segment_checks_the_output_folder_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    Image.fromarray(np.full((64, 64, 3), 255, np.uint8)).save(tmp_path / "a.png")
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(tmp_path / "file")]) == 2
    assert "--out" in capsys.readouterr().err


def test_segment_goes_on_past_an_input_that_hits_a_bug(tmp_path, capsys, blood_field, monkeypatch):
    import hemascope.segment as segment

    image, _, _ = blood_field
    for name in ("a.png", "b.png"):
        Image.fromarray(image[:384, :384]).save(tmp_path / name)
    real = segment.find_cells

    def find_cells(slide, **kwargs):  # a fault injected on one input: an error no check expects
        if slide.name.startswith("a"):
            raise IndexError("index 21 is out of bounds")
        return real(slide, **kwargs)

    monkeypatch.setattr(segment, "find_cells", find_cells)
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--out", str(out),
                 "--mpp", "0.5", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "a.png: IndexError: index 21 is out of bounds (unexpected: please report it)" in err
    assert set(pd.read_csv(out / "cells.csv")["source"].map(lambda s: s[-5:])) == {"b.png"}
