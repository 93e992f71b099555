"""Headless exports of a :class:`~hemascope.results.SlideResult` (the napari writer hooks call these).

- :func:`write_cell_table` — cell table as CSV or Parquet.
- :func:`write_geojson` / :func:`read_geojson` — QuPath detections out, annotations back in.
- :func:`write_labels_zarr` — cell label mask as OME-Zarr labels next to the image pyramid.
- :func:`write_report_json` / :func:`write_report_png` — the slide report.
- :data:`EXPORTS` — the one table of exports (name, file, writer, napari writer hook).
- :func:`export_all` — the exports of a result (all, or those named) into one folder.
"""

from hemascope.export.bundle import export_all
from hemascope.export.geojson import GeoJSONObject, cells_to_geojson, read_geojson, write_geojson
from hemascope.export.labels import write_labels_zarr
from hemascope.export.registry import EXPORTS, Export, select_exports
from hemascope.export.report import report_dict, write_report_json
from hemascope.export.report_figure import write_report_png
from hemascope.export.tables import write_cell_table

__all__ = [
    "EXPORTS",
    "Export",
    "GeoJSONObject",
    "cells_to_geojson",
    "export_all",
    "read_geojson",
    "report_dict",
    "select_exports",
    "write_cell_table",
    "write_geojson",
    "write_labels_zarr",
    "write_report_json",
    "write_report_png",
]
