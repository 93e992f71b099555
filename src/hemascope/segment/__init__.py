"""White-cell finding on whole slides and fields: smear mask ► candidates ► per-cell masks.

>>> from hemascope.segment import find_cells
>>> seg = find_cells(image, mpp=0.25)            # doctest: +SKIP
>>> seg.cells[["row", "col", "area_um2", "nc_ratio"]]  # doctest: +SKIP

* :func:`find_cells` — the whole run (regions on dask threads, progress, cancel).
* :func:`plan_regions` / :func:`segment_region` — independent, picklable regions (pipeline, resume,
  dask.distributed); concatenate their tables with :func:`concat_cell_tables`.
* :func:`estimate_mpp` — µm/px from the red cells of an image.
* :data:`CELL_COLUMNS` — the cell table's columns.
"""

from hemascope.segment.find import Segmentation, find_cells, paint_labels, paint_window
from hemascope.segment.regions import Region, plan_regions, segment_region
from hemascope.segment.scale import estimate_mpp
from hemascope.segment.settings import SEGMENTERS, SegmentSettings
from hemascope.segment.table import CELL_COLUMNS, concat_cell_tables, empty_cell_table

__all__ = [
    "CELL_COLUMNS",
    "SEGMENTERS",
    "Region",
    "SegmentSettings",
    "Segmentation",
    "concat_cell_tables",
    "empty_cell_table",
    "estimate_mpp",
    "find_cells",
    "paint_labels",
    "paint_window",
    "plan_regions",
    "segment_region",
]
