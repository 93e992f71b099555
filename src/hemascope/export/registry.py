"""The exports of an analysed slide: one table, read by every path that writes exports.

:data:`EXPORTS` lists each export once: its name, the file it writes, what it is, the function
that writes it from a :class:`~hemascope.results.SlideResult`, and (when napari can save layers
in that format) the napari writer hook. :func:`hemascope.export.export_all` (what ``analyze`` and
``demo`` write), ``hemascope export --only`` and the napari manifest's ``writers`` section
(:func:`manifest_writers`, checked by ``tests/export/test_export_registry.py``) all read it, so an
export is added here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hemascope.errors import InvalidInputError
from hemascope.results import SlideResult

#: ``--only``/``exports`` value meaning every export of the table.
ALL_EXPORTS = "all"


@dataclass(frozen=True)
class NapariWriter:
    """A napari writer hook of an export (a ``writers`` entry of ``napari.yaml``).

    Attributes
    ----------
    function
        Name of the hook in :mod:`hemascope.napari.writers`; its manifest command is
        ``hemascope.<function>``.
    layer_types
        napari layer types the hook saves (``"image?"``: optionally an image layer too).
    display_name
        What napari's save dialog shows.
    """

    function: str
    layer_types: tuple[str, ...]
    display_name: str

    @property
    def command(self) -> str:
        """The manifest command id."""
        return f"hemascope.{self.function}"


@dataclass(frozen=True)
class Export:
    """One export (see the module docstring).

    Attributes
    ----------
    name
        Key in :func:`~hemascope.export.export_all`'s result and in ``--only``.
    file_name
        The file written into the exports folder (its suffix is the napari writer's extension).
    description
        One line for help texts and docs.
    write
        ``write(result, path) -> path``; ``None`` for a napari-only format (it needs the layers).
    napari
        The napari writer hook, when napari can save layers in this format.
    one_picture
        Places the cells in one picture's pixels: not written for a pooled result, whose cells
        lie in several (:attr:`~hemascope.results.SlideResult.pooled`).
    """

    name: str
    file_name: str
    description: str
    write: Callable[[SlideResult, Path], Path] | None
    napari: NapariWriter | None = None
    one_picture: bool = False

    @property
    def extension(self) -> str:
        """The file suffix (``.csv``, ``.zarr``, ...)."""
        return Path(self.file_name).suffix


def _label_arrays(result: SlideResult) -> tuple[Any, Any]:
    """The result's cell and nucleus label arrays (lazy zarr), or ``(None, None)``."""
    if result.labels_path is None or not Path(result.labels_path).is_dir():
        return None, None
    import zarr

    store = zarr.open_group(str(result.labels_path), mode="r")
    groups = store["labels"]
    nuclei = store["labels/nuclei/0"] if isinstance(groups, zarr.Group) and "nuclei" in groups else None
    return store["labels/cells/0"], nuclei


def _cell_table(result: SlideResult, path: Path) -> Path:
    from hemascope.export.tables import write_cell_table

    return write_cell_table(path, result.cells)


def _geojson(result: SlideResult, path: Path) -> Path:
    """Cells outlined by their masks when the result has a label mask, else by circles of their area."""
    from hemascope.export.geojson import write_geojson

    labels, nuclei = _label_arrays(result)
    return write_geojson(path, result.cells, labels=labels, nuclei=nuclei, mpp=result.slide.get("mpp"))


def _report_json(result: SlideResult, path: Path) -> Path:
    from hemascope.export.report import write_report_json

    return write_report_json(path, result)


def _report_png(result: SlideResult, path: Path) -> Path:
    from hemascope.export.report_figure import write_report_png

    return write_report_png(path, result)


#: Every export, in the order they are written.
EXPORTS: tuple[Export, ...] = (
    Export("cells_csv", "cells.csv", "cell table (one row per cell, level-0 px and µm) as CSV",
           _cell_table, NapariWriter("write_points_csv", ("points",), "hemascope cell table")),
    Export("cells_parquet", "cells.parquet", "the same cell table as Parquet", _cell_table),
    Export("geojson", "cells.geojson", "QuPath detections (cell outlines with class and measurements)",
           _geojson, NapariWriter("write_points_geojson", ("points",), "QuPath GeoJSON"), one_picture=True),
    Export("report_json", "report.json", "slide report: differential, blast %, slide models, provenance",
           _report_json),
    Export("report_png", "report.png", "the slide report as a figure", _report_png),
    Export("labels_zarr", "labels.zarr", "cell masks as OME-Zarr labels beside the image (napari; "
           "`analyze` keeps them in the result folder)", None,
           NapariWriter("write_labels_zarr", ("image?", "labels"), "OME-Zarr labels")),
)


def bundle_exports() -> tuple[Export, ...]:
    """The exports written from a saved result (those with a ``write`` function)."""
    return tuple(e for e in EXPORTS if e.write is not None)


def select_exports(names: str | Sequence[str] | None = None) -> tuple[Export, ...]:
    """The bundle exports named in ``names`` (``None`` or ``"all"``: every one), in table order.

    Parameters
    ----------
    names
        Export names, as a sequence or comma-separated.

    Raises
    ------
    InvalidInputError
        A name that is not a bundle export (the message lists them).
    """
    available = {e.name: e for e in bundle_exports()}
    if names is None or names == ALL_EXPORTS:
        return tuple(available.values())
    wanted = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n) for n in names]
    wanted = [n for n in wanted if n]
    unknown = [n for n in wanted if n not in available]
    if unknown or not wanted:
        raise InvalidInputError(
            f"unknown export(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(available)} "
            f"or {ALL_EXPORTS!r}"
        )
    return tuple(e for e in available.values() if e.name in wanted)


def manifest_writers() -> list[dict[str, Any]]:
    """The ``writers`` section of ``napari.yaml`` as the table says it must be."""
    return [
        {"command": e.napari.command, "layer_types": list(e.napari.layer_types),
         "filename_extensions": [e.extension], "display_name": e.napari.display_name}
        for e in EXPORTS if e.napari is not None
    ]


__all__ = ["ALL_EXPORTS", "EXPORTS", "Export", "NapariWriter", "bundle_exports", "manifest_writers",
           "select_exports"]
