"""Ground truth of a synthetic smear: the cell table, instance masks and the slide label.

Files next to a slide ``<stem>.ome.tif``: ``<stem>.cells.csv`` (one row per white cell and
platelet, columns :data:`TRUTH_COLUMNS`), ``<stem>.truth.json`` (slide label: subtype, kind, seed,
µm/px, shape and the full spec) and, on request, ``<stem>.masks.tif`` (two tiled uint32 pages: cell
and nucleus instance labels whose values are the table's ``id``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hemascope._version import __version__
from hemascope.errors import DataError
from hemascope.synthetic.spec import SmearSpec

#: Columns of the truth cell table. ``row``/``col`` are the centroid in level-0 pixels,
#: ``x_um``/``y_um`` the same point in µm, the bbox is half-open ``[row0, row1) x [col0, col1)``
#: (clipped to the slide), ``diameter_um`` the cell's mean diameter, ``features`` ``;``-separated
#: subtype features (see :class:`~hemascope.synthetic.morphology.CellPlan`).
TRUTH_COLUMNS: tuple[str, ...] = (
    "id",
    "class",
    "subclass",
    "row",
    "col",
    "x_um",
    "y_um",
    "bbox_row0",
    "bbox_col0",
    "bbox_row1",
    "bbox_col1",
    "diameter_um",
    "features",
)

#: Bumped whenever the same spec would render different pixels (stale caches are then rebuilt).
GENERATOR_VERSION = 2

_SLIDE_SUFFIXES = (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".svs", ".png", ".jpg")


def truth_paths(slide_path: str | os.PathLike[str]) -> dict[str, Path]:
    """Paths of the truth files of a slide: keys ``"cells"``, ``"label"``, ``"masks"``."""
    path = Path(slide_path)
    name = path.name
    for suffix in _SLIDE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    base = path.with_name(name)
    return {
        "cells": base.with_name(name + ".cells.csv"),
        "label": base.with_name(name + ".truth.json"),
        "masks": base.with_name(name + ".masks.tif"),
    }


@dataclass
class GroundTruth:
    """What a synthetic smear really contains.

    Attributes
    ----------
    cells
        One row per white cell and platelet (columns :data:`TRUTH_COLUMNS`). Red cells are not listed.
    label
        Slide label: ``subtype``, ``kind``, ``seed``, ``mpp``, ``shape``, ``spec`` (dict),
        ``generator``, ``generator_version`` and ``version``.
    cell_labels, nucleus_labels
        Instance label images (int32, values = ``id``) when requested and small enough to hold.
    """

    cells: pd.DataFrame
    label: dict[str, Any]
    cell_labels: np.ndarray | None = None
    nucleus_labels: np.ndarray | None = None

    @property
    def spec(self) -> SmearSpec:
        """The spec that generated the smear."""
        return SmearSpec.from_dict(self.label["spec"])

    @property
    def subtype(self) -> str:
        """Slide-level genetic subtype."""
        return str(self.label["subtype"])

    def white_cells(self) -> pd.DataFrame:
        """The rows of the table that are not platelets."""
        return self.cells[self.cells["class"] != "platelet"]

    def save(self, slide_path: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``<stem>.cells.csv`` and ``<stem>.truth.json`` next to ``slide_path`` atomically."""
        from hemascope.files import atomic_write_json, atomic_write_table

        paths = truth_paths(slide_path)
        atomic_write_table(paths["cells"], self.cells)
        atomic_write_json(paths["label"], self.label)
        return paths

    @classmethod
    def load(cls, slide_path: str | os.PathLike[str]) -> GroundTruth:
        """Read the truth saved next to ``slide_path`` (masks are not loaded; see :func:`read_masks`).

        Raises
        ------
        DataError
            When the truth files are missing or unreadable.
        """
        import json

        paths = truth_paths(slide_path)
        try:
            label = json.loads(paths["label"].read_text(encoding="utf-8"))
            cells = pd.read_csv(
                paths["cells"], keep_default_na=False, dtype={"subclass": str, "features": str}
            )
        except (OSError, ValueError) as exc:
            raise DataError(f"no readable ground truth next to {slide_path}: {exc}") from exc
        missing = set(TRUTH_COLUMNS) - set(cells.columns)
        if missing:
            raise DataError(f"{paths['cells']} lacks columns {sorted(missing)}")
        return cls(cells=cells, label=label)


def slide_label(spec: SmearSpec) -> dict[str, Any]:
    """The slide label written to ``truth.json``."""
    return {
        "subtype": spec.subtype,
        "kind": spec.kind,
        "seed": spec.seed,
        "mpp": spec.mpp,
        "shape": list(spec.size),
        "spec": spec.to_dict(),
        "generator": "hemascope.synthetic",
        "generator_version": GENERATOR_VERSION,
        "version": __version__,
    }


def truth_table(renderer: Any) -> pd.DataFrame:
    """The truth cell table of a renderer's smear (white cells and platelets), sorted by id.

    Only the layout is consulted (white cells and platelets, block by block); nothing is rendered
    and red cells are never laid out, so this takes a small fraction of the rendering time. Only
    cells whose centroid pixel lies inside the slide are listed; boxes are clipped to the slide.
    ``class``, ``subclass`` and ``features`` are categorical columns.
    """
    layout = renderer.layout
    mpp = renderer.mpp
    rows_max, cols_max = renderer.spec.size
    half = renderer._plt_cell.shape[1] // 2
    plt_boxes, plt_diam = [], []
    for v in range(renderer._plt_cell.shape[0]):
        rr, cc = np.nonzero(renderer._plt_cell[v] > 0.5)
        plt_boxes.append((rr.min(), cc.min(), rr.max() + 1, cc.max() + 1))
        plt_diam.append(2 * renderer.platelet_plans[v].radius)
    plt_boxes_a = np.array(plt_boxes, dtype=np.int64) - half
    plt_diam_a = np.array(plt_diam)
    wbc_recs: list[tuple] = []
    plt_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for bi in range(layout.n_block_rows):
        for bj in range(layout.n_block_cols):
            plans, ids = layout.wbcs(bi, bj)
            for cid, plan in zip(ids.tolist(), plans, strict=True):
                up, down, left, right = plan.extents
                wbc_recs.append((
                    cid, plan.cls, plan.subclass, plan.y_um / mpp, plan.x_um / mpp,
                    math.ceil((plan.y_um - up) / mpp), math.ceil((plan.x_um - left) / mpp),
                    math.floor((plan.y_um + down) / mpp) + 1,
                    math.floor((plan.x_um + right) / mpp) + 1,
                    2 * plan.radius, ";".join(plan.features),
                ))  # fmt: skip
            pyx, pvar, pids = layout.platelets(bi, bj)
            plt_parts.append((np.rint(pyx / mpp).astype(np.int64), pvar, pids))
    wbc = pd.DataFrame.from_records(
        wbc_recs,
        columns=["id", "class", "subclass", "row", "col", "bbox_row0", "bbox_col0", "bbox_row1",
                 "bbox_col1", "diameter_um", "features"],
    )  # fmt: skip
    pc = np.concatenate([p[0] for p in plt_parts]) if plt_parts else np.zeros((0, 2), np.int64)
    pvar = np.concatenate([p[1] for p in plt_parts]) if plt_parts else np.zeros(0, np.int64)
    box = plt_boxes_a[pvar] + np.concatenate([pc, pc], axis=1)
    plt = pd.DataFrame({
        "id": np.concatenate([p[2] for p in plt_parts]) if plt_parts else np.zeros(0, np.int64),
        "class": "platelet", "subclass": "", "row": pc[:, 0].astype(float),
        "col": pc[:, 1].astype(float), "bbox_row0": box[:, 0], "bbox_col0": box[:, 1],
        "bbox_row1": box[:, 2], "bbox_col1": box[:, 3], "diameter_um": plt_diam_a[pvar],
        "features": "",
    })  # fmt: skip
    table = pd.concat([wbc, plt], ignore_index=True).sort_values("id", ignore_index=True)
    table["x_um"] = table["col"] * mpp
    table["y_um"] = table["row"] * mpp
    for col, hi in (("bbox_row0", rows_max), ("bbox_row1", rows_max),
                    ("bbox_col0", cols_max), ("bbox_col1", cols_max)):  # fmt: skip
        table[col] = table[col].clip(0, hi).astype(np.int64)
    table["id"] = table["id"].astype(np.int64)
    for col in ("class", "subclass", "features"):
        table[col] = table[col].astype(str).astype("category")
    return table[list(TRUTH_COLUMNS)]


def read_masks(slide_path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read ``<stem>.masks.tif``: the cell and nucleus instance label images (uint32).

    Raises
    ------
    DataError
        When the masks file is missing (the slide was made without ``masks=True``) or unreadable.
    """
    import tifffile

    path = truth_paths(slide_path)["masks"]
    try:
        with tifffile.TiffFile(path) as tif:
            return tif.pages[0].asarray(), tif.pages[1].asarray()
    except (OSError, IndexError, ValueError) as exc:
        raise DataError(f"no readable masks for {slide_path}: {exc}") from exc
