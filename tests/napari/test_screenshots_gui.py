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
    from hemascope.napari.launch import add_widgets

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


def _small_png(image: np.ndarray, path: Path, width: int = 1280) -> None:
    """Save a screenshot scaled to ``width`` and reduced to 256 colours (small files for docs)."""
    from PIL import Image

    picture = Image.fromarray(np.asarray(image)[..., :3])
    picture = picture.resize((width, round(picture.height * width / picture.width)), Image.LANCZOS)
    picture.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)


def test_screenshots_of_the_sample_analysis_at_1600x1000(make_napari_viewer, qtbot, out_dir, tmp_path):
    """What a user sees after *Analyze slide* with the defaults: overview, review zoom, report, gallery."""
    from hemascope.napari import add_slide, show_results
    from hemascope.napari.launch import add_widgets
    from hemascope.napari.layers import CELLS_LAYER_NAME
    from hemascope.napari.review import focus_on_cell
    from hemascope.napari.viewer import LEGEND_NAME
    from hemascope.pipeline import analyze_slide
    from hemascope.synthetic import sample_slide_path

    result = analyze_slide(sample_slide_path(), out_dir=tmp_path / "result")
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    add_slide(viewer, sample_slide_path())
    show_results(viewer, result)
    widgets = add_widgets(viewer)
    viewer.scale_bar.visible = True
    viewer.reset_view()
    qtbot.waitUntil(lambda: widgets["Cell gallery"].thumbnails_pending == 0, timeout=30_000)
    qtbot.wait(500)
    assert not viewer.layers["blast probability"].visible  # the smear is not hidden by a heat map
    from qtpy.QtWidgets import QLabel

    legend = viewer.window._qt_viewer.canvas.native.findChild(QLabel, LEGEND_NAME)
    assert legend is not None and legend.isVisible() and "Neutrophil" in legend.text()
    shots = {"viewer_overview.png": None}
    _small_png(viewer.screenshot(canvas_only=False, flash=False), out_dir / "viewer_overview.png")
    cells = viewer.layers[CELLS_LAYER_NAME]
    centre = np.asarray(result.slide["shape"][:2], float) / 2
    nearest = int(np.argmin(np.hypot(*(cells.features[["row", "col"]].to_numpy(float) - centre).T)))
    focus_on_cell(viewer, cells, nearest, field_um=120.0)
    qtbot.wait(500)
    review = viewer.screenshot(canvas_only=False, flash=False)
    _small_png(review, out_dir / "viewer_review_zoom.png")
    shots["viewer_review_zoom.png"] = review
    report_dock = widgets["Slide report"].parent()
    report_dock.raise_()
    qtbot.wait(300)
    _small_png(viewer.screenshot(canvas_only=False, flash=False), out_dir / "viewer_report_dock.png")
    widgets["Cell gallery"].parent().raise_()
    qtbot.wait(300)
    _small_png(viewer.screenshot(canvas_only=False, flash=False), out_dir / "viewer_gallery.png")
    for name in ("viewer_overview.png", "viewer_review_zoom.png", "viewer_report_dock.png",
                 "viewer_gallery.png"):
        assert (out_dir / name).stat().st_size < 900_000
    assert review[..., :3].std() > 10
