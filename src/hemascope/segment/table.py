"""The cell table: one row per white cell, its columns defined in one place (:data:`CELL_COLUMNS`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage import measure

#: Columns of the cell table, in order, with their dtypes. Positions are level-0 pixels
#: (``row``/``col`` centroid, ``bbox_*`` half-open box) and micrometres (``y_um``/``x_um``).
CELL_COLUMNS: dict[str, str] = {
    "id": "int64",
    "row": "float64",
    "col": "float64",
    "y_um": "float64",
    "x_um": "float64",
    "bbox_min_row": "int64",
    "bbox_min_col": "int64",
    "bbox_max_row": "int64",
    "bbox_max_col": "int64",
    "area_um2": "float64",
    "perimeter_um": "float64",
    "circularity": "float64",
    "nucleus_area_um2": "float64",
    "nc_ratio": "float64",
    "cell_mean_r": "float64",
    "cell_mean_g": "float64",
    "cell_mean_b": "float64",
    "nucleus_mean_r": "float64",
    "nucleus_mean_g": "float64",
    "nucleus_mean_b": "float64",
    "cytoplasm_mean_r": "float64",
    "cytoplasm_mean_g": "float64",
    "cytoplasm_mean_b": "float64",
    "segmenter": "object",
    "segmenter_version": "object",
}


def empty_cell_table() -> pd.DataFrame:
    """A cell table with no rows and every column of :data:`CELL_COLUMNS` (right dtypes)."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in CELL_COLUMNS.items()})


def _mean_rgb(pixels: np.ndarray) -> tuple[float, float, float]:
    if pixels.size == 0:
        return (float("nan"),) * 3  # type: ignore[return-value]
    mean = pixels.reshape(-1, 3).mean(axis=0)
    return float(mean[0]), float(mean[1]), float(mean[2])


def measure_cells(
    cells: np.ndarray,
    nuclei: np.ndarray,
    image: np.ndarray,
    mpp: float,
    *,
    offset: tuple[int, int] = (0, 0),
    segmenter: str,
    segmenter_version: str,
) -> pd.DataFrame:
    """Measure cell instances of a label image into a cell table.

    Parameters are those of :func:`cell_rows`.

    Returns
    -------
    pandas.DataFrame
        One row per instance, columns :data:`CELL_COLUMNS`; ``id`` holds the instance label.
    """
    rows = cell_rows(cells, nuclei, image, mpp, offset=offset, segmenter=segmenter,
                     segmenter_version=segmenter_version)
    return as_cell_table(pd.DataFrame(rows)) if rows else empty_cell_table()


def cell_rows(
    cells: np.ndarray,
    nuclei: np.ndarray,
    image: np.ndarray,
    mpp: float,
    *,
    offset: tuple[int, int] = (0, 0),
    segmenter: str,
    segmenter_version: str,
) -> list[dict]:
    """Measure cell instances of a label image into cell-table rows (plain dicts).

    Parameters
    ----------
    cells
        ``(rows, cols)`` integer whole-cell instance labels (0 = background).
    nuclei
        Nucleus labels of the same shape; nucleus pixels of cell ``k`` carry ``k``.
    image
        The RGB uint8 image the labels were computed on (for the colour features).
    mpp
        Micrometres per pixel of the labels (level 0).
    offset
        Level-0 ``(row, col)`` of the labels' top-left pixel.
    segmenter, segmenter_version
        Provenance written into every row.

    Returns
    -------
    list of dict
        One dict per instance with the keys of :data:`CELL_COLUMNS`; ``id`` is the instance label.
    """
    rows = []
    r_off, c_off = offset
    for region in measure.regionprops(cells):
        r0, c0, r1, c1 = region.bbox
        cell = region.image
        patch = image[r0:r1, c0:c1]
        nucleus = nuclei[r0:r1, c0:c1] == region.label
        nucleus &= cell
        area = float(region.area) * mpp**2
        perimeter = float(region.perimeter) * mpp
        nucleus_area = float(nucleus.sum()) * mpp**2
        cy, cx = region.centroid
        rows.append(
            {
                "id": int(region.label),
                "row": cy + r_off,
                "col": cx + c_off,
                "y_um": (cy + r_off) * mpp,
                "x_um": (cx + c_off) * mpp,
                "bbox_min_row": r0 + r_off,
                "bbox_min_col": c0 + c_off,
                "bbox_max_row": r1 + r_off,
                "bbox_max_col": c1 + c_off,
                "area_um2": area,
                "perimeter_um": perimeter,
                "circularity": float(min(4 * np.pi * area / perimeter**2, 1.0)) if perimeter > 0 else 0.0,
                "nucleus_area_um2": nucleus_area,
                "nc_ratio": nucleus_area / area if area > 0 else 0.0,
                **dict(zip(("cell_mean_r", "cell_mean_g", "cell_mean_b"), _mean_rgb(patch[cell]), strict=True)),
                **dict(zip(("nucleus_mean_r", "nucleus_mean_g", "nucleus_mean_b"), _mean_rgb(patch[nucleus]), strict=True)),
                **dict(
                    zip(
                        ("cytoplasm_mean_r", "cytoplasm_mean_g", "cytoplasm_mean_b"),
                        _mean_rgb(patch[cell & ~nucleus]),
                        strict=True,
                    )
                ),
                "segmenter": segmenter,
                "segmenter_version": segmenter_version,
            }
        )
    return rows


def as_cell_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Order and cast a frame to :data:`CELL_COLUMNS` (extra columns are kept after them)."""
    extra = [c for c in frame.columns if c not in CELL_COLUMNS]
    out = frame[list(CELL_COLUMNS) + extra].copy() if len(frame) else empty_cell_table()
    return out.astype(CELL_COLUMNS)


def concat_cell_tables(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-region tables, sort by position and number the cells ``1..N``.

    Parameters
    ----------
    tables
        Tables from :func:`hemascope.segment.segment_region` (regions never share a cell).

    Returns
    -------
    pandas.DataFrame
        One table with ``id`` = 1..N in (row, col) order.
    """
    tables = [t for t in tables if len(t)]
    if not tables:
        return empty_cell_table()
    out = pd.concat(tables, ignore_index=True).sort_values(["row", "col"], kind="stable")
    out = out.reset_index(drop=True)
    out["id"] = np.arange(1, len(out) + 1, dtype=np.int64)
    return as_cell_table(out)
