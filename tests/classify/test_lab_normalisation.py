"""Background white balance, background padding, JPEG round trip and the reject output."""

import numpy as np
import torch

from hemascope.classify import classify_images
from hemascope.classify.crops import cell_image_to_crop, crops_to_tensor
from hemascope.classify.normalize import (
    TARGET_WHITE,
    background_colour,
    background_rgb,
    chroma_subsample,
    chroma_subsample_uint8,
    white_balance,
)
from hemascope.models import ModelCard, build_model, save_model


def _cell_on(glass, size=60, radius=12, colour=(110, 50, 150)):
    img = np.empty((size, size, 3), np.uint8)
    img[...] = glass
    rr, cc = np.mgrid[:size, :size]
    img[(rr - size // 2) ** 2 + (cc - size // 2) ** 2 <= radius**2] = colour
    return img


def test_white_balance_maps_any_glass_to_the_same_white():
    white = torch.from_numpy(_cell_on((235, 230, 238))).permute(2, 0, 1)[None].float() / 255
    yellow = torch.from_numpy(_cell_on((240, 220, 150))).permute(2, 0, 1)[None].float() / 255
    for x in (white, yellow):
        out = white_balance(x)
        assert torch.allclose(out[0, :, 0, 0], torch.full((3,), TARGET_WHITE), atol=1e-3)
    assert background_rgb(yellow)[0, 2] < 0.7  # the estimate sees the yellow glass


def test_background_colour_and_padding_follow_the_glass():
    img = _cell_on((240, 220, 150), size=30)
    assert background_colour(img).tolist() == [240, 220, 150]
    card = ModelCard(name="t", version="0", classes=["a", "b"], input_size=48, mpp=1.0)
    plain = cell_image_to_crop(img, 1.0, card)
    card.preprocess = {"pad": "background"}
    padded = cell_image_to_crop(img, 1.0, card)
    assert plain[0, 0].tolist() == [255, 255, 255]
    assert padded[0, 0].tolist() == [240, 220, 150]


def test_chroma_subsampling_keeps_luma_and_flat_colour_and_is_applied_by_the_card():
    flat = torch.full((1, 3, 8, 8), 0.5)
    flat[:, 0] = 0.8
    assert torch.allclose(chroma_subsample(flat), flat, atol=1e-5)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (2, 48, 48, 3), dtype=np.uint8)
    out = chroma_subsample_uint8(crops)
    assert out.shape == crops.shape and out.dtype == np.uint8
    luma = np.array([0.299, 0.587, 0.114])
    # luma survives (up to rounding and clipping); colour detail does not
    assert np.abs(out @ luma - crops @ luma).mean() < 12
    assert np.abs(out.astype(int) - crops).mean() > 10
    crops = np.stack([_cell_on((235, 230, 238), size=48)] * 2)
    card = ModelCard(name="t", version="0", classes=["a", "b"], input_size=48, mpp=1.0)
    card.preprocess = {"chroma": "420"}
    x = crops_to_tensor(crops, card)
    card.preprocess = {}
    assert not torch.allclose(x, crops_to_tensor(crops, card))


def test_reject_class_is_reported_unclassified_and_shift_is_judged(tmp_path):
    card = ModelCard(
        name="rej",
        version="0",
        classes=["a", "smudge"],
        input_size=16,
        mpp=1.0,
        arch_params={"widths": [4, 8, 8, 8]},
        reject_classes=["smudge"],
        preprocess={"white_balance": "background", "pad": "background"},
        domain_reference={"threshold": 1e9},
    )
    module = build_model("cellnet", 2, card.arch_params)
    with torch.no_grad():
        module.head.bias.copy_(torch.tensor([-10.0, 10.0]))  # always "smudge"
    path = save_model(module, card, tmp_path)
    images = [_cell_on((235, 230, 238), size=30) for _ in range(20)]
    res = classify_images(images, path, mpp=1.0, device="cpu")
    assert set(res.table["class"]) == {"unclassified"}
    assert "prob_smudge" in res.table.columns
    shift = res.domain_shift
    assert shift is not None and shift.n_cells == 20 and not shift.shifted
    assert np.isfinite(shift.score) and "like the training data" in shift.reason
