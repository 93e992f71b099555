"""Users' other inputs: CellaVision-like close-ups of one white cell with no µm/px, and folders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def close_up(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 36 µm close-up (360² at 0.1 µm/px) centred on one white cell, saved as a PNG without scale."""
    from PIL import Image

    from hemascope.synthetic import SmearSpec, render_field

    image, truth = render_field(SmearSpec(size=(1200, 1200), mpp=0.1, seed=3, wbc_density=1500,
                                          glass_margin=0.0), masks=False)
    wbc = truth.cells[truth.cells["class"] != "platelet"]
    rows, cols = wbc["row"].to_numpy(), wbc["col"].to_numpy()
    inner = (rows > 200) & (rows < 1000) & (cols > 200) & (cols < 1000)
    assert inner.any(), "the synthetic field holds no white cell away from its border"
    r, c = int(rows[inner][0]), int(cols[inner][0])
    path = tmp_path_factory.mktemp("close-up") / "cell.png"
    Image.fromarray(image[r - 180:r + 180, c - 180:c + 180]).save(path)
    return path


def test_analyze_finds_the_cell_of_a_close_up_without_mpp(close_up, cli, tmp_path):
    assert cli("analyze", close_up, "--out", tmp_path, "--quiet") == 0
    cells = pd.read_parquet(tmp_path / "cell" / "cells.parquet")
    assert len(cells) >= 1
    centre = ((cells["row"] - 180) ** 2 + (cells["col"] - 180) ** 2) ** 0.5
    assert centre.min() < 40  # the centred white cell, within 4 µm


def test_zero_cells_still_name_the_slide_model_that_abstained(blank_png, cli, tmp_path, capsys):
    assert cli("analyze", blank_png, "--out", tmp_path, "--mpp", "0.25", "--quiet") == 0
    line = capsys.readouterr().out
    assert "0 cells" in line and "apl" in line and "ABSTAINED" in line
    assert "no slide-level model applies" not in line


def test_segment_and_analyze_take_a_folder_of_images(close_up, cli, tmp_path, capsys):
    folder = tmp_path / "crops" / "patient_1"
    folder.mkdir(parents=True)
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(close_up.read_bytes())
    (folder / "notes.txt").write_text("not an image")
    assert cli("segment", tmp_path / "crops", "--out", tmp_path / "seg", "--mpp", "0.1", "--quiet") == 0
    table = pd.read_csv(tmp_path / "seg" / "cells.csv")
    assert sorted(Path(s).name for s in table["source"].unique()) == ["a.png", "b.png"]
    assert (tmp_path / "seg" / "a_cells.tif").is_file() and (tmp_path / "seg" / "b_cells.tif").is_file()
    assert cli("analyze", tmp_path / "crops", "--out", tmp_path / "ana", "--mpp", "0.1", "--quiet") == 0
    assert "2/2 slides analysed" in capsys.readouterr().out


def test_a_folder_without_images_is_one_clear_error(cli, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli("segment", tmp_path / "empty", "--out", tmp_path / "seg") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no slide or image files" in err[0]


def test_analyze_gives_the_fields_of_one_folder_one_scale(cli, tmp_path, capsys):
    import json

    from PIL import Image

    from hemascope.synthetic import SmearSpec, render_field

    image, _ = render_field(SmearSpec(size=(640, 640), mpp=0.5, seed=5, wbc_density=600), masks=False)
    folder = tmp_path / "fields"
    folder.mkdir()
    for k, (r, c) in enumerate([(0, 0), (0, 320), (320, 0), (320, 320), (160, 160)]):
        Image.fromarray(image[r:r + 320, c:c + 320]).save(folder / f"f{k}.png")
    assert cli("analyze", folder, "--out", tmp_path / "out", "--quiet", "--no-export") == 0
    slides = [json.loads((tmp_path / "out" / f"f{k}" / "result.json").read_text())["slide"] for k in range(5)]
    assert len({round(s["mpp"], 9) for s in slides}) == 1
    assert slides[0]["mpp"] == pytest.approx(0.5, rel=0.15)
    assert all(s["mpp_source"] == "estimated" and "median of the 5 images" in s["mpp_reason"] for s in slides)


def test_a_phone_photograph_through_the_eyepiece_is_segmented_and_analysed(cli, tmp_path, capsys):
    """A JPEG from a phone at the eyepiece (black surround, 35 % fall-off, no µm/px): `segment` finds
    the white cells of the evenly lit field and estimates its scale; `analyze` runs with defaults."""
    from PIL import Image

    from hemascope.segment import find_cells
    from hemascope.segment.metrics import match_points
    from hemascope.synthetic import SmearSpec, photographed, render_field

    image, _ = render_field(SmearSpec(size=1024, mpp=0.25, seed=3, wbc_density=600), masks=False)
    shot, in_view = photographed(image, fall_off=0.35, field_stop=0.47)
    path = tmp_path / "eyepiece.jpg"
    Image.fromarray(shot).save(path, quality=85)
    even = find_cells(image, mpp=0.25).cells[["row", "col"]].to_numpy()
    even = even[in_view[even[:, 0].astype(int), even[:, 1].astype(int)]]
    assert cli("segment", path, "--out", tmp_path / "seg", "--quiet") == 0
    table = pd.read_csv(tmp_path / "seg" / "cells.csv")
    assert table["mpp"].iloc[0] == pytest.approx(0.25, rel=0.15)
    score = match_points(table[["row", "col"]].to_numpy(), even, 16.0)
    assert score.recall >= 0.95 and score.precision >= 0.95, score
    assert cli("analyze", path, "--out", tmp_path / "ana", "--quiet") == 0
    assert len(pd.read_parquet(tmp_path / "ana" / "eyepiece" / "cells.parquet")) == len(table)


def test_classify_gives_a_one_cell_field_the_answer_of_its_centred_crop(cli, tmp_path, capsys):
    """The same neutrophil as a 30-µm centred crop and inside a 100-µm field, 25 µm off its centre."""
    import numpy as np
    from PIL import Image

    from hemascope.synthetic import render_cell

    scene, _, _ = render_cell("neutrophil", mpp=0.25, size=600, rng=np.random.default_rng(7))
    folder = tmp_path / "cells"
    folder.mkdir()
    Image.fromarray(scene[240:360, 240:360]).save(folder / "crop.png")
    Image.fromarray(scene[:400, 60:460]).save(folder / "field.png")
    out = tmp_path / "classes.csv"
    assert cli("classify", folder, "--mpp", "0.25", "--out", out, "--quiet") == 0
    assert "1 whole fields, cropped on their central white cell" in capsys.readouterr().out
    table = pd.read_csv(out).set_index(pd.read_csv(out)["path"].map(lambda p: Path(p).stem))
    assert table.loc["crop", "framing"] == "centred" and table.loc["field", "framing"] == "located"
    assert table.loc["field", "class"] == table.loc["crop", "class"]
    probs = [c for c in table.columns if c.startswith("prob_")]
    assert np.abs(table.loc["field", probs].to_numpy(float) - table.loc["crop", probs].to_numpy(float)).max() < 0.15


def test_classify_warns_when_the_cells_do_not_look_like_the_mpp_given(cli, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from hemascope.synthetic.field import render_cell

    folder = tmp_path / "monocytes"
    folder.mkdir()
    for seed in range(6):  # 32 µm crops of one monocyte each at 0.1 µm/px
        image, _, _ = render_cell("monocyte", mpp=0.1, size=320, rng=np.random.default_rng(seed))
        Image.fromarray(image).save(folder / f"mono{seed}.png")
    assert cli("classify", folder, "--mpp", "0.1", "--out", tmp_path / "right.csv") == 0
    assert "check --mpp" not in capsys.readouterr().err
    assert cli("classify", folder, "--mpp", "0.25", "--out", tmp_path / "wrong.csv") == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "check --mpp" in err and "0.25 µm/px given" in err
    assert (pd.read_csv(tmp_path / "wrong.csv")["mpp"] == 0.25).all()  # used as given all the same
