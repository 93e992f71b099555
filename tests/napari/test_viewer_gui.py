"""launch_viewer, label pyramids from a result, and the OME-Zarr labels writer, in a real viewer."""

import numpy as np
import pytest

from hemascope.napari.layers import open_label_pyramid

pytestmark = pytest.mark.gui


@pytest.fixture
def labels_image():
    labels = np.zeros((460, 460), dtype=np.uint32)
    labels[30:50, 30:50] = 1
    labels[100:130, 200:240] = 2
    return labels


def test_launch_viewer_opens_slide_results_and_docks(make_napari_viewer, tmp_path, slide, result,
                                                     labels_image):
    from hemascope.export import write_labels_zarr
    from hemascope.io import write_pyramidal_tiff
    from hemascope.napari import launch_viewer

    make_napari_viewer()  # registers napari's test clean-up for the viewer made below
    path = write_pyramidal_tiff(tmp_path / "field.ome.tif", np.asarray(slide.levels[0]), mpp=0.5,
                                tile_size=256)
    result.slide["path"] = str(path)
    result.labels_path = write_labels_zarr(tmp_path / "masks.ome.zarr", slide, labels_image, mpp=0.5)
    viewer = launch_viewer(result, block=False, show=False)
    try:
        names = [lyr.name for lyr in viewer.layers]
        assert names == ["field.ome.tif", "smear mask", "blast probability", "cell masks", "cells"]
        masks = viewer.layers["cell masks"]
        assert masks.multiscale == (len(open_label_pyramid(result.labels_path)) > 1)
        assert tuple(masks.scale) == (0.5, 0.5)
        level0 = masks.data[0] if masks.multiscale else masks.data
        np.testing.assert_array_equal(np.asarray(level0), labels_image)
        assert set(viewer.window.dock_widgets) >= {"Analyze slide", "Slide report", "Cell gallery"}
    finally:
        viewer.close()


def test_labels_writer_stores_masks_with_their_image(make_napari_viewer, tmp_path, slide,
                                                      labels_image):
    from hemascope.napari import add_slide

    viewer = make_napari_viewer()
    image = add_slide(viewer, slide)
    masks = viewer.add_labels(labels_image, scale=(0.5, 0.5), name="masks")
    out = tmp_path / "saved.ome.zarr"
    from hemascope.napari.writers import write_labels_zarr

    [written] = write_labels_zarr(str(out), [image.as_layer_data_tuple(), masks.as_layer_data_tuple()])
    levels = open_label_pyramid(written)
    np.testing.assert_array_equal(np.asarray(levels[0]), labels_image)
    from hemascope.io import open_slide

    reopened = open_slide(written)
    assert reopened.shape == (460, 460) and reopened.mpp == pytest.approx(0.5)


@pytest.mark.parametrize(("name", "cls"), [("Analyze slide", "AnalyzeWidget"),
                                           ("Slide report", "ReportWidget"),
                                           ("Cell gallery", "GalleryWidget")])
def test_widgets_open_from_the_plugins_menu(make_napari_viewer, name, cls):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("hemascope", name)
    assert type(widget).__name__ == cls
    # napari hands the widget (a proxy of) this viewer: it sees the layers added here
    viewer.add_image(np.zeros((32, 32, 3), dtype=np.uint8), rgb=True, name="rgb")
    assert "rgb" in [layer.name for layer in widget.viewer.layers]
