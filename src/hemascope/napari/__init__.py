"""The hemascope napari plugin: reader, writer and sample hooks, result layers and widgets.

This is the only part of hemascope that imports napari, magicgui or Qt (and only inside the
widget modules and the functions that need a viewer). Every widget action is also a plain function:

- :func:`show_results` adds a :class:`~hemascope.results.SlideResult`'s layers to a viewer;
- :func:`launch_viewer` opens napari with a slide, its results and the widgets;
- :mod:`hemascope.napari.layers` builds each layer as a ``LayerDataTuple`` without a viewer;
- :func:`hemascope.napari.analysis_run.iter_analysis` is the Analyze dock's compute, as a generator;
- :mod:`hemascope.napari.review` holds the gallery's reclassify/save logic.
"""

from hemascope.napari.launch import launch_viewer
from hemascope.napari.viewer import add_slide, show_results

__all__ = ["add_slide", "launch_viewer", "show_results"]
