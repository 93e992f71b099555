"""``hemascope segment`` and ``hemascope evaluate segmentation`` end to end on synthetic images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import tifffile
from PIL import Image

from hemascope.cli.main import main
from hemascope.segment import CELL_COLUMNS


def test_segment_writes_tables_and_uint32_labels(tmp_path, blood_field):
    image, wbc, _ = blood_field
    Image.fromarray(image).save(tmp_path / "field.png")
    Image.fromarray(image[:512, :512]).save(tmp_path / "small.png")
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "field.png"), str(tmp_path / "small.png"),
                 "--out", str(out), "--mpp", "0.5", "--quiet"]) == 0
    csv = pd.read_csv(out / "cells.csv")
    parquet = pd.read_parquet(out / "cells.parquet")
    assert len(csv) == len(parquet) > 0
    assert set(CELL_COLUMNS) <= set(csv.columns) and set(csv["source"].map(lambda s: s[-9:])) == {"field.png", "small.png"}
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
