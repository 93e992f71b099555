"""Open napari with a slide, its results and the hemascope widgets (``hemascope demo --gui``)::

    import hemascope
    from hemascope.napari import launch_viewer
    result = hemascope.analyze_slide("slide.ome.tif")
    launch_viewer(result)  # returns when the window is closed (block=False: at once)

The widgets import :mod:`hemascope.napari.viewer`; this module sits above both, so the napari
room has no import cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hemascope.napari.viewer import add_slide, show_results

if TYPE_CHECKING:
    import napari
    from hemascope.results import SlideResult


def add_widgets(viewer: napari.Viewer) -> dict[str, Any]:
    """Dock the Analyze, Slide report and Cell gallery widgets; returns them by name."""
    from hemascope.napari.analyze_widget import AnalyzeWidget
    from hemascope.napari.gallery_widget import GalleryWidget
    from hemascope.napari.report_widget import ReportWidget

    widgets = {
        "Analyze slide": AnalyzeWidget(viewer),
        "Slide report": ReportWidget(viewer),
        "Cell gallery": GalleryWidget(viewer),
    }
    for name, widget in widgets.items():
        # the report and the gallery share one tabbed dock below the Analyze dock
        viewer.window.add_dock_widget(widget, name=name, area="right", tabify=name == "Cell gallery")
    return widgets


def launch_viewer(
    result: SlideResult | None = None,
    slide: Any = None,
    *,
    widgets: bool = True,
    block: bool = True,
    show: bool = True,
) -> napari.Viewer:
    """Open napari with a slide, a result's layers and the hemascope widgets.

    Parameters
    ----------
    result
        A :class:`~hemascope.results.SlideResult` to show (optional).
    slide
        The slide (path or :class:`~hemascope.io.Slide`); by default the result's own slide file
        when it still exists.
    widgets
        Dock the Analyze, Slide report and Cell gallery widgets.
    block
        Run the Qt event loop (``napari.run()``) until the window is closed, as a command-line
        tool needs (``hemascope demo --gui``); ``False`` returns at once (scripts, notebooks).
    show
        Show the window (``False`` for off-screen use).

    Returns
    -------
    napari.Viewer
    """
    import napari

    viewer = napari.Viewer(title="hemascope", show=show)
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)  # napari >= 0.9
    (overlays.scale_bar if overlays is not None else viewer.scale_bar).visible = True
    if slide is None and result is not None and result.slide.get("path"):
        path = Path(result.slide["path"])
        slide = path if path.exists() else None
    if slide is not None:
        add_slide(viewer, slide, mpp=result.slide.get("mpp") if result is not None else None)
    if result is not None:
        show_results(viewer, result)
    if widgets:
        add_widgets(viewer)
    if block:
        napari.run()
    return viewer
