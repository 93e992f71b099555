"""The Analyze dock end to end on a small synthetic slide, with the GUI thread kept responsive."""

import time

import numpy as np
import pytest
from qtpy.QtCore import Qt, QTimer

from hemascope.napari import add_slide

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def synthetic_slide():
    from hemascope.io import slide_from_array
    from hemascope.synthetic import SmearSpec, render_field

    image, truth = render_field(SmearSpec(size=512, seed=3, wbc_density=400.0))
    return slide_from_array(image, mpp=0.5, name="synthetic.png"), truth


def _choose_models(dock, tiny_models):
    dock.cell_model_combo.setCurrentText(tiny_models["cell_model"])
    dock.slide_model_combo.setCurrentText(tiny_models["slide_model"])


def test_iter_analysis_yields_progress_then_result(synthetic_slide, tiny_models):
    from hemascope.napari.analysis_run import analysis_config, iter_analysis

    slide, _ = synthetic_slide
    gen = iter_analysis(slide, analysis_config(device="cpu", region_size=256, **tiny_models))
    events = []
    try:
        while True:
            events.append(next(gen))
    except StopIteration as stop:
        result = stop.value
    assert events and all(0 <= e.fraction <= 1 for e in events)
    assert result.n_cells > 0 and "class" in result.cells.columns


def test_dock_runs_end_to_end_and_gui_stays_responsive(make_napari_viewer, qtbot, synthetic_slide,
                                                       tiny_models):
    from hemascope.napari.analyze_widget import AnalyzeWidget

    slide, truth = synthetic_slide
    viewer = make_napari_viewer()
    add_slide(viewer, slide)
    dock = AnalyzeWidget(viewer)
    qtbot.addWidget(dock)
    assert dock.image_combo.currentText() == "synthetic.png"
    assert dock.device_combo.itemText(0) == "cpu"
    _choose_models(dock, tiny_models)

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    computed: list[float] = []
    dock.run()
    # recorded in the worker thread the moment the analysis returns (before layers are added)
    dock.worker.returned.connect(lambda _: computed.append(time.perf_counter()),
                                 Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(dock.worker.finished, timeout=120_000):
        pass
    shown = time.perf_counter()
    timer.stop()
    during = np.asarray([t for t in ticks if t <= computed[0]])
    gaps = np.diff(during)
    print(f"event loop while analysing: {len(during)} ticks of 10 ms over "
          f"{during[-1] - during[0]:.1f} s, median gap {np.median(gaps) * 1e3:.1f} ms, "
          f"max gap {gaps.max() * 1e3:.0f} ms; adding the layers took "
          f"{shown - computed[0]:.2f} s")
    assert len(during) > 20 and gaps.max() < 0.5  # the viewer never froze for half a second

    assert dock.result is not None and dock.status.text().startswith("done")
    cells = viewer.layers["cells"]
    assert len(cells.data) == dock.result.n_cells > 0
    np.testing.assert_array_equal(cells.features["class"], dock.result.cells["class"])
    assert dock.progress_bar.value() == 1000


def test_dock_cancel_stops_the_run(make_napari_viewer, qtbot, synthetic_slide, tiny_models):
    from hemascope.napari.analyze_widget import AnalyzeWidget

    slide, _ = synthetic_slide
    viewer = make_napari_viewer()
    add_slide(viewer, slide)
    dock = AnalyzeWidget(viewer)
    qtbot.addWidget(dock)
    _choose_models(dock, tiny_models)
    dock.run()
    dock.cancel()
    with qtbot.waitSignal(dock.worker.finished, timeout=60_000):
        pass
    assert dock.status.text() == "cancelled"
    assert "cells" not in [lyr.name for lyr in viewer.layers]
    assert dock.run_button.isEnabled()


def test_dock_region_from_shapes_layer_is_a_polygon_in_um(make_napari_viewer, qtbot, synthetic_slide,
                                                          tiny_models):
    from hemascope.napari.analyze_widget import WHOLE_SMEAR, AnalyzeWidget

    slide, _ = synthetic_slide
    viewer = make_napari_viewer()
    add_slide(viewer, slide)
    dock = AnalyzeWidget(viewer)
    qtbot.addWidget(dock)
    _choose_models(dock, tiny_models)
    assert dock.config().roi_um is None  # whole smear by default
    # a rectangle drawn in level-0 pixels on a layer scaled like the slide: the ROI is in µm
    viewer.add_shapes([np.array([[10, 20], [10, 220], [110, 220], [110, 20]])], scale=(0.5, 0.5),
                      name="region")
    assert [dock.region_combo.itemText(i) for i in range(dock.region_combo.count())] == [WHOLE_SMEAR, "region"]
    dock.region_combo.setCurrentText("region")
    config = dock.config()
    np.testing.assert_allclose(config.roi_um, [[5, 10], [5, 110], [55, 110], [55, 10]])
    assert config.cell_model == tiny_models["cell_model"] and config.device == "cpu"
