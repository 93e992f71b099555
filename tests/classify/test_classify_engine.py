"""Crops at the model's scale, batched inference with a loader thread, TTA, embeddings, bad files."""

import threading

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hemascope.classify import classify_images, fit_temperature, predict_cells, slide_crop
from hemascope.classify.crops import cell_image_to_crop
from hemascope.classify.images import read_cell_image
from hemascope.errors import Cancelled, InvalidInputError, UnsupportedFormatError
from hemascope.io import slide_from_array
from hemascope.models import load_model


def _disk_image(size, center, radius, colour=(200, 30, 30)):
    img = np.full((size, size, 3), 255, np.uint8)
    rr, cc = np.mgrid[:size, :size]
    img[(rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= radius**2] = colour
    return img


def test_slide_crop_is_centred_and_resampled_to_model_scale(tiny_model):
    card = load_model(tiny_model).card  # 16 px at 1.0 µm/px
    img = _disk_image(200, (60, 140), 8)  # 8 px radius at 0.5 µm/px = 4 µm
    slide = slide_from_array(img, mpp=0.5)
    crop = slide_crop(slide, 60, 140, card)
    assert crop.shape == (16, 16, 3)
    red = (crop[..., 1] < 128).sum()
    assert crop[8, 8, 1] < 100 and np.pi * 4**2 * 0.7 < red < np.pi * 4**2 * 1.4
    assert crop[0, 0, 1] == 255  # glass around the cell
    edge = slide_crop(slide, 0, 0, card)  # outside the image is white
    assert edge.shape == (16, 16, 3) and edge[0, 0].tolist() == [255, 255, 255]


def test_cell_image_to_crop_checks_input(tiny_model):
    card = load_model(tiny_model).card
    with pytest.raises(UnsupportedFormatError, match="grayscale"):
        cell_image_to_crop(np.zeros((40, 40), np.uint8), 0.5, card)
    with pytest.raises(UnsupportedFormatError, match="RGBA"):
        cell_image_to_crop(np.zeros((40, 40, 4), np.uint8), 0.5, card)
    with pytest.raises(InvalidInputError, match="smaller than a cell"):
        cell_image_to_crop(np.zeros((4, 4, 3), np.uint8), 0.5, card)


def test_predict_cells_batches_tta_embeddings_progress(tiny_model):
    img = np.full((300, 300, 3), 230, np.uint8)
    centres = [(50, 50), (50, 250), (150, 150), (250, 60), (240, 240)]
    for r, c in centres:
        img[r - 6 : r + 6, c - 6 : c + 6] = (120, 40, 160)
    slide = slide_from_array(img, mpp=0.5)
    cells = pd.DataFrame(
        {"row": [r for r, _ in centres], "col": [c for _, c in centres]},
        index=[10, 11, 12, 13, 14],
    )
    calls = []
    res = predict_cells(
        slide,
        cells,
        tiny_model,
        device="cpu",
        batch_size=2,
        return_embeddings=True,
        progress=lambda d, t, m: calls.append((d, t)),
    )
    t = res.table
    assert list(t.index) == [10, 11, 12, 13, 14]
    probs = t[["prob_a", "prob_b", "prob_c"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    assert (t["confidence"] == probs.max(1)).all() and set(t["class"]) <= {"a", "b", "c"}
    assert res.embeddings.shape == (5, 8)
    assert calls[-1] == (5, 5)
    tta = predict_cells(slide, cells, tiny_model, device="cpu", tta=True).table
    np.testing.assert_allclose(tta[["prob_a", "prob_b", "prob_c"]].sum(1), 1, atol=1e-5)
    # single cells that are rotation-symmetric squares give (nearly) the same TTA/non-TTA answer
    np.testing.assert_allclose(tta["prob_a"], t["prob_a"], atol=0.05)


def test_predict_cells_cancel_and_bad_table(tiny_model):
    slide = slide_from_array(np.full((64, 64, 3), 255, np.uint8), mpp=1.0)
    cancel = threading.Event()
    cancel.set()
    cells = pd.DataFrame({"row": [10.0] * 4, "col": [10.0] * 4})
    with pytest.raises(Cancelled):
        predict_cells(slide, cells, tiny_model, device="cpu", cancel=cancel)
    with pytest.raises(InvalidInputError, match="centroid"):
        predict_cells(slide, pd.DataFrame({"x": [1]}), tiny_model, device="cpu")
    with pytest.raises(InvalidInputError, match="µm/px"):
        predict_cells(
            slide_from_array(np.zeros((8, 8, 3), np.uint8)), cells, tiny_model, device="cpu"
        )


def _save_copies(folder, image):
    """``image`` as an RGB PNG and in the colour modes and depths users' tools write."""
    import imagecodecs
    import tifffile

    Image.fromarray(image).save(folder / "rgb.png")
    Image.fromarray(np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(image).convert("P").save(folder / "palette.png")
    Image.fromarray(image).convert("CMYK").save(folder / "cmyk.jpg", quality=100)
    deep = image.astype(np.uint16) * 16  # a 12-bit camera in 16-bit files
    tifffile.imwrite(folder / "chunky.tif", deep, photometric="rgb")
    tifffile.imwrite(folder / "planar.tif", np.moveaxis(deep, -1, 0), photometric="rgb", planarconfig="separate")
    (folder / "deep.png").write_bytes(imagecodecs.png_encode(deep))
    return ["rgba.png", "palette.png", "cmyk.jpg", "chunky.tif", "planar.tif", "deep.png"]


def test_pictures_saved_in_other_colour_modes_or_depths_are_classified_like_rgb(tmp_path, tiny_model):
    """Opaque RGBA PNGs (screenshots, exports), palette PNGs, CMYK JPEGs (all three skipped before)
    and 12-bit camera pictures in 16-bit TIFF (chunky, planar) and PNG files (read as near-black
    pictures and classified anyway before) read as their RGB twin and get its class."""
    image = _disk_image(60, (30, 30), 10, colour=(120, 40, 160))
    copies = _save_copies(tmp_path, image)
    for name in copies:
        tolerance = {"cmyk.jpg": 12, "palette.png": 60}.get(name, 1)  # JPEG; the web palette's steps
        assert np.abs(read_cell_image(tmp_path / name).astype(int) - image).max() <= tolerance, name
    res = classify_images([tmp_path / n for n in ["rgb.png", *copies]], tiny_model, mpp=0.5, device="cpu")
    assert res.failed == []
    probs = res.table.set_index("path").filter(like="prob_")
    reference = probs.loc[str(tmp_path / "rgb.png")].to_numpy()
    for name in copies:
        assert np.abs(probs.loc[str(tmp_path / name)].to_numpy() - reference).max() < 0.05, name


def test_classify_images_goes_on_past_bad_files(tmp_path, tiny_model):
    good = tmp_path / "good.png"
    Image.fromarray(_disk_image(60, (30, 30), 10)).save(good)
    (tmp_path / "corrupt.jpg").write_bytes(b"not a jpeg at all")
    Image.fromarray(np.zeros((60, 60), np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(np.zeros((60, 60, 4), np.uint8)).save(tmp_path / "rgba.png")
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "tiny.png")
    import tifffile

    tifffile.imwrite(tmp_path / "float.tif", _disk_image(60, (30, 30), 10).astype(np.float32) / 255)
    items = [
        good,
        tmp_path / "corrupt.jpg",
        tmp_path / "gray.png",
        tmp_path / "rgba.png",
        tmp_path / "tiny.png",
        tmp_path / "missing.png",
        tmp_path / "float.tif",
        _disk_image(30, (15, 15), 5),
    ]
    res = classify_images(items, tiny_model, mpp=0.5, device="cpu")
    assert list(res.table["path"]) == [str(good), "<array 7>"]
    reasons = dict(res.failed)
    assert len(reasons) == 6
    assert "float32 samples" in reasons[str(tmp_path / "float.tif")]  # was "cannot identify image file"
    assert "decode" in reasons[str(tmp_path / "corrupt.jpg")]
    assert "grayscale" in reasons[str(tmp_path / "gray.png")]
    assert "RGBA" in reasons[str(tmp_path / "rgba.png")]
    assert "smaller than a cell" in reasons[str(tmp_path / "tiny.png")]
    assert not any(reason.startswith(name) for name, reason in res.failed)  # no path twice
    # without mpp the scale comes from the estimator
    est = classify_images([good], tiny_model, device="cpu", estimate=lambda im: 0.25)
    assert est.table["mpp"].tolist() == [0.25]


def test_temperature_fit_softens_overconfident_logits():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    logits = rng.normal(size=(600, 3))
    logits[np.arange(600), labels] += 1.0
    assert fit_temperature(logits * 8, labels) > 3  # overconfident → T > 1
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.35)
