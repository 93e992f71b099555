"""The scale read from a picture's white cell, and how it joins the red cells' estimate."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from skimage.transform import rescale

from hemascope.classify.cell_scale import (
    CELL_CONFIDENCE,
    HEAD_FILE,
    cell_scale,
    combine,
    head_network,
    load_cell_scale_model,
    off_centre_cell,
    picture_scale,
    read_scale_head,
)
from hemascope.errors import InvalidInputError, ModelIntegrityError, ModelNotFoundError
from hemascope.models.registry import BUNDLED_DIR
from hemascope.segment import estimate_mpp
from hemascope.segment.batch_scale import estimate_field_scales, pool_estimates
from hemascope.segment.scale import MIN_CONFIDENCE, ScaleEstimate
from hemascope.synthetic import SmearSpec, render_field
from hemascope.synthetic.field import render_cell


def _est(mpp: float, confidence: float, **cues) -> ScaleEstimate:
    return ScaleEstimate(mpp, confidence, cues, "test")


def test_a_confident_red_cell_estimate_and_an_agreeing_cell_are_averaged_and_stay_confident():
    out = combine(_est(0.10, 0.9), _est(0.11, 0.3, path="cell_model"))
    assert out.mpp == pytest.approx(np.sqrt(0.10 * 0.11))
    assert out.confidence == pytest.approx(0.9) and not out.low_confidence
    assert out.cues["cell_mpp"] == pytest.approx(0.11) and out.cues["red_cell_mpp"] == pytest.approx(0.10)


def test_red_cells_and_cell_that_disagree_are_flagged_and_far_apart_keep_the_red_cells():
    near = combine(_est(0.10, 0.9), _est(0.13, 0.3))
    assert near.low_confidence and near.mpp == pytest.approx(np.sqrt(0.10 * 0.13))
    far = combine(_est(0.10, 0.9), _est(0.30, 0.3))
    assert far.low_confidence and far.mpp == pytest.approx(0.10)


def test_an_unsure_red_cell_estimate_gives_way_to_the_cell_however_far_apart():
    out = combine(_est(0.25, 0.2), _est(0.10, 0.35))
    assert out.mpp == pytest.approx(0.10) and out.confidence == pytest.approx(0.35)
    apart = combine(_est(0.50, 0.2), _est(0.10, 0.35))  # 5x: pieces of red cells read as small ones
    assert apart.mpp == pytest.approx(0.10) and apart.confidence == pytest.approx(0.2)  # the lower of the two
    assert apart.low_confidence


def test_a_picture_without_red_cells_takes_the_cells_reading_not_its_nucleus_size():
    """The nucleus-size guess (``path`` "white_cell") is not averaged in, even when close: on held-out
    close-ups it pulled right readings of the cell out of ±15 %."""
    out = combine(_est(0.141, 0.1, path="white_cell"), _est(0.162, 0.33, path="cell_model"))
    assert out.mpp == pytest.approx(0.162) and out.low_confidence
    assert out.cues["red_cell_mpp"] == pytest.approx(0.141) and out.cues["path"] == "white_cell"


def _cell_picture(mpp: float = 0.1) -> np.ndarray:
    image, _, _ = render_cell("lymphocyte", mpp=mpp, size=int(32 / mpp), rng=np.random.default_rng(3))
    return image


def test_a_reading_at_which_the_picture_is_smaller_than_a_cell_is_no_reading():
    """The central 5 µm of a lymphocyte (its nucleus) reads ~0.08 µm/px: a 4 µm picture, which no
    command can classify; ``picture_scale`` then keeps the red cells' answer."""
    image, _, _ = render_cell("lymphocyte", mpp=0.1, size=320, rng=np.random.default_rng(3))
    with pytest.raises(InvalidInputError, match="smaller than a cell"):
        cell_scale(image[135:185, 135:185])


def test_the_cell_scale_follows_the_picture_when_it_is_enlarged():
    image = _cell_picture()
    enlarged = np.round(rescale(image, 2.0, channel_axis=-1, preserve_range=True)).astype(np.uint8)
    one, two = cell_scale(image), cell_scale(enlarged)
    assert 1.6 < one.mpp / two.mpp < 2.5
    assert one.cues["path"] == "cell_model" and one.confidence <= CELL_CONFIDENCE < MIN_CONFIDENCE


def test_a_one_cell_field_is_read_at_its_cell_not_at_its_centre():
    cell, whole, _ = render_cell("lymphocyte", mpp=0.1, size=320, rng=np.random.default_rng(3))
    glass = np.median(cell.reshape(-1, 3)[:200], axis=0).astype(np.uint8)
    cell[~whole] = glass  # on bare glass: no red cells to measure, the field's one cell is the ruler
    field = np.empty((600, 600, 3), dtype=np.uint8)  # 60 µm: the cell 12 µm off the centre in each axis
    field[:] = glass
    field[40:360, 40:360] = cell
    red = estimate_mpp(field)
    centre = off_centre_cell(red)
    assert centre is not None and np.hypot(centre[0] - 200, centre[1] - 200) < 30  # the nucleus, not the middle
    assert off_centre_cell(estimate_mpp(cell)) is None  # a centred crop keeps its centre
    at_cell = cell_scale(field, centre=centre)
    assert at_cell.mpp == pytest.approx(cell_scale(cell).mpp, rel=0.1)
    out = picture_scale(field)
    assert out.cues["cell_mpp"] == pytest.approx(at_cell.mpp)
    assert out.mpp == pytest.approx(0.1, rel=0.15)


def test_a_field_of_many_red_cells_keeps_the_red_cell_estimate():
    image, _ = render_field(SmearSpec(size=800, mpp=0.25, seed=4))
    assert float(picture_scale(image)) == pytest.approx(float(estimate_mpp(image)))


def test_the_head_is_checked_against_the_network_it_was_trained_on(tmp_path):
    loaded = load_cell_scale_model().loaded
    with pytest.raises(ModelNotFoundError):
        read_scale_head(tmp_path / "missing.safetensors", loaded)
    with safe_open(str(BUNDLED_DIR / HEAD_FILE), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = dict(f.metadata())
    other = tmp_path / "other.safetensors"
    save_file(tensors, str(other), metadata={**meta, "backbone_sha256": "0" * 64})
    with pytest.raises(ModelIntegrityError, match="other wbc weights"):
        read_scale_head(other, loaded)
    shutil.copy(BUNDLED_DIR / HEAD_FILE, tmp_path / "same.safetensors")
    assert read_scale_head(tmp_path / "same.safetensors", loaded).head is not None


@pytest.mark.parametrize(("hidden", "depth", "members"), [(64, 1, 1), (8, 2, 3)])
def test_the_head_takes_its_shape_from_its_file(tmp_path, hidden, depth, members):
    """A head file says its hidden units, layers and averaged members (a one-layer head of 64 units
    without ``depth``/``members`` is the format of ``wbc`` 0.5.0's first head)."""
    loaded = load_cell_scale_model().loaded
    with safe_open(str(BUNDLED_DIR / HEAD_FILE), framework="pt") as f:
        meta = dict(f.metadata())
        n_inputs = f.get_tensor("mean").numel()
    head = head_network(n_inputs, hidden, depth, members)
    tensors = {f"net.{k}": v for k, v in head.state_dict().items()}
    tensors |= {"mean": torch.zeros(n_inputs), "std": torch.ones(n_inputs)}
    shape = {"hidden": str(hidden)} | ({} if members == 1 else {"depth": str(depth), "members": str(members)})
    meta = {k: v for k, v in meta.items() if k not in ("hidden", "depth", "members")} | shape
    save_file(tensors, str(tmp_path / "head.safetensors"), metadata=meta)
    read = read_scale_head(tmp_path / "head.safetensors", loaded)
    x = torch.randn(5, n_inputs)
    assert torch.allclose(read.head(x), head(x))
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={**meta, "hidden": str(hidden + 1)})
    with pytest.raises(ModelIntegrityError, match="not a scale head"):
        read_scale_head(tmp_path / "bad.safetensors", loaded)


def test_ten_cells_that_agree_make_a_confident_pooled_scale_red_cell_guesses_do_not():
    cells = [_est(0.1 * (1 + 0.02 * k), 0.3, cell_mpp=0.1) for k in range(10)]
    pooled = pool_estimates(cells, ["a"] * 10)
    assert not pooled[0].low_confidence and pooled[0].mpp == pytest.approx(0.109, rel=0.05)
    guesses = [_est(0.1 * (1 + 0.02 * k), 0.3) for k in range(10)]
    assert pool_estimates(guesses, ["a"] * 10)[0].low_confidence
    assert pool_estimates(cells[:4], ["a"] * 4 + [])[0] == cells[0]  # too few to pool
    assert pool_estimates(cells[:5], ["a"] * 5)[0].confidence == pytest.approx(0.5)


def test_a_few_pictures_are_scaled_by_the_estimator_the_command_passes(tmp_path):
    import imageio.v3 as iio

    paths = []
    for k in range(2):
        paths.append(tmp_path / f"cell{k}.png")
        iio.imwrite(paths[-1], _cell_picture())
    scales = estimate_field_scales(paths, lambda image: _est(0.123, 0.9))
    assert {float(v) for v in scales.values()} == {0.123} and len(scales) == 2


def test_a_crop_that_only_its_red_cells_make_a_field_is_checked_against_its_cell():
    """A 320-px crop of a lymphocyte at 0.1 µm/px among red cells drawn as at 0.16 µm/px (red cells
    that read too small: granules, pieces of red cells in real crops) is a 50-µm "field" at the red
    cells' confident answer. The cell model reads it as one cell, so the answer is no longer
    confident (before: the red cells' 0.155, confidence 0.96)."""
    from scipy import ndimage as ndi

    cell, whole, _ = render_cell("lymphocyte", mpp=0.1, size=320, rng=np.random.default_rng(3))
    picture, other, _ = render_cell("lymphocyte", mpp=0.16, size=320, rng=np.random.default_rng(13))
    picture[ndi.binary_dilation(other, iterations=3)] = np.median(cell.reshape(-1, 3)[:200], axis=0)
    picture[whole] = cell[whole]
    red = estimate_mpp(picture)
    assert not red.low_confidence and red.mpp > 0.15  # a field of 48 µm or more at this answer
    out = picture_scale(picture)
    assert out.low_confidence and out.cues["cell_mpp"] < 0.13
