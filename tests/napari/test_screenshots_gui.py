"""Screenshots of napari with the sample slide (README) and with result layers and widgets.

They go to ``$HEMASCOPE_SCREENSHOT_DIR`` when set (``docs/screenshots`` is made that way), else
to a temporary folder; either way the test checks that something was actually drawn.
"""

import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gui


@pytest.fixture
def out_dir(tmp_path) -> Path:
    folder = Path(os.environ.get("HEMASCOPE_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _save(viewer, path: Path, canvas_only: bool) -> np.ndarray:
    from PIL import Image

    image = viewer.screenshot(canvas_only=canvas_only, flash=False)
    Image.fromarray(image).save(path)
    return image


def test_screenshot_of_sample_slide(make_napari_viewer, out_dir):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1200, 800)
    [layer] = viewer.open_sample("hemascope", "smear")
    viewer.scale_bar.visible = True
    viewer.reset_view()
    image = _save(viewer, out_dir / "napari_sample_slide.png", canvas_only=False)
    assert image.shape[0] > 400 and image[..., :3].std() > 10  # a real picture, not a blank canvas


def test_screenshot_of_results_and_widgets(make_napari_viewer, qtbot, out_dir, slide, result):
    from hemascope.napari import add_slide, show_results
    from hemascope.napari.viewer import add_widgets

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    add_slide(viewer, slide)
    show_results(viewer, result)
    widgets = add_widgets(viewer)
    viewer.reset_view()
    qtbot.waitUntil(lambda: widgets["Cell gallery"].thumbnails_pending == 0, timeout=20_000)
    qtbot.wait(300)  # let the docks lay out
    image = _save(viewer, out_dir / "napari_results_widgets.png", canvas_only=False)
    assert image[..., :3].std() > 10
