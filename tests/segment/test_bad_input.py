"""Bad input: blank, black and white images, no cells, ROI outside, unknown µm/px, missing model."""

from __future__ import annotations

import numpy as np
import pytest

from hemascope.cli.main import main
from hemascope.errors import HemascopeError, InvalidInputError, ModelNotFoundError
from hemascope.segment import CELL_COLUMNS, estimate_mpp, find_cells


@pytest.mark.parametrize("value", [0, 255, 128])
def test_uniform_images_give_an_empty_table(value):
    seg = find_cells(np.full((600, 500, 3), value, np.uint8), mpp=0.5)
    assert len(seg.cells) == 0
    assert list(seg.cells.columns) == list(CELL_COLUMNS)
    assert seg.cell_labels.shape == (600, 500) and seg.cell_labels.max() == 0


def test_red_cells_only_gives_no_white_cells():
    from hemascope.synthetic import SmearSpec, render_field

    image, _ = render_field(SmearSpec(size=512, mpp=0.5, seed=3, wbc_density=0.0, platelet_ratio=0.2))
    assert len(find_cells(image, mpp=0.5).cells) == 0


def test_roi_outside_the_slide_is_an_error(blood_field):
    image, _, _ = blood_field
    with pytest.raises(InvalidInputError, match="outside the slide"):
        find_cells(image, mpp=0.5, roi=[[-900, -900], [-900, -800], [-800, -800]])


def test_roi_restricts_the_cells(blood_field):
    image, _, _ = blood_field
    all_cells = find_cells(image, mpp=0.5).cells
    half = find_cells(image, mpp=0.5, roi=[[0, 0], [0, 256], [512, 256], [512, 0]]).cells
    assert 0 < len(half) < len(all_cells)
    assert (half["x_um"] < 256 + 12).all()


def test_unknown_mpp_on_blank_image_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="µm/px"):
        find_cells(np.full((256, 256, 3), 255, np.uint8))


def test_unknown_mpp_is_estimated_and_recorded(blood_field):
    image, wbc, _ = blood_field
    assert estimate_mpp(image) == pytest.approx(0.5, rel=0.15)
    seg = find_cells(image)
    assert seg.mpp_source == "estimated" and seg.mpp == pytest.approx(0.5, rel=0.15)
    assert seg.scale is not None and not seg.scale.low_confidence
    assert find_cells(image, mpp=0.5).scale is None
    assert len(seg.cells) >= 0.85 * len(wbc)


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                                 np.zeros((0, 10, 3), np.uint8)])
def test_non_rgb_input_is_rejected(bad):
    with pytest.raises(InvalidInputError):
        find_cells(bad, mpp=0.5)


def test_unknown_setting_and_segmenter_are_rejected():
    image = np.full((64, 64, 3), 255, np.uint8)
    with pytest.raises(InvalidInputError, match="unknown"):
        find_cells(image, mpp=0.5, no_such_setting=1)
    with pytest.raises(HemascopeError):
        find_cells(image, mpp=0.5, segmenter="magic")


def test_missing_cellpose_model_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path))
    image = np.full((64, 64, 3), 255, np.uint8)
    with pytest.raises(ModelNotFoundError, match=str(tmp_path)):
        find_cells(image, mpp=0.5, segmenter="cellpose")
    assert find_cells(image, mpp=0.5, segmenter="auto").segmenter == "classical"


def test_cli_bad_input_exits_2(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.full((128, 128, 3), 255, np.uint8)).save(tmp_path / "blank.png")
    assert main(["segment", str(tmp_path / "blank.png"), "--out", str(tmp_path / "o")]) == 2
    assert "µm/px" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")]) == 2
