"""Slides of every format family open through the plugin as one multiscale RGB layer in µm."""

import numpy as np
import pytest
from PIL import Image

from hemascope.napari.reader import get_slide_reader

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def image():
    rr, cc = np.mgrid[:1024, :768]
    out = np.full((1024, 768, 3), 235, dtype=np.uint8)
    out[(rr - 300) ** 2 + (cc - 200) ** 2 <= 900] = (120, 60, 150)
    return out


def _write(kind: str, folder, image: np.ndarray):
    from hemascope.io import write_ome_zarr, write_pyramidal_tiff

    if kind == "ome-tiff":
        return write_pyramidal_tiff(folder / "s.ome.tif", image, mpp=0.25, tile_size=256), 0.25
    if kind == "tiff":
        return write_pyramidal_tiff(folder / "s.tif", image, mpp=0.5, tile_size=256, ome=False), 0.5
    if kind.startswith("ome-zarr"):
        version = kind.rsplit("-", 1)[1]
        return write_ome_zarr(folder / "s.ome.zarr", image, mpp=0.3, version=version, chunks=256), 0.3
    path = folder / f"s.{kind}"
    Image.fromarray(image).save(path, quality=95)
    return path, None


@pytest.mark.parametrize("kind", ["ome-tiff", "tiff", "ome-zarr-0.4", "ome-zarr-0.5", "png", "jpg"])
def test_reader_gives_multiscale_rgb_layer_in_um(kind, tmp_path, image):
    path, mpp = _write(kind, tmp_path, image)
    reader = get_slide_reader(str(path))
    assert reader is not None
    [(levels, kwargs, layer_type)] = reader(str(path))
    assert layer_type == "image" and kwargs["rgb"] and kwargs["multiscale"]
    assert kwargs["name"] == path.name and kwargs["contrast_limits"] == (0, 255)
    assert kwargs["scale"] == ((mpp, mpp) if mpp else (1.0, 1.0))
    assert levels[0].shape == (1024, 768, 3) and len(levels) >= 2
    tolerance = 12 if kind in ("ome-tiff", "tiff", "jpg") else 0  # JPEG tiles
    assert np.abs(np.asarray(levels[0][290:310, 190:210]).astype(int) - image[290:310, 190:210]).max() <= tolerance


def test_sample_and_slide_open_through_the_plugin(make_napari_viewer, tmp_path, image):
    from hemascope.io import open_slide
    from hemascope.synthetic import sample_slide_path

    viewer = make_napari_viewer()
    [layer] = viewer.open_sample("hemascope", "smear")
    slide = open_slide(sample_slide_path())
    assert layer.multiscale and layer.rgb and layer.name == slide.name
    assert tuple(layer.scale) == (slide.mpp, slide.mpp)
    assert [tuple(d.shape[:2]) for d in layer.data] == slide.level_shapes
    path, _ = _write("ome-tiff", tmp_path, image)
    [opened] = viewer.open(str(path), plugin="hemascope")
    assert opened.name == "s.ome.tif" and tuple(opened.scale) == (0.25, 0.25)
