"""Every headless export of a :class:`~hemascope.results.SlideResult` into one folder."""

from __future__ import annotations

from pathlib import Path

from hemascope.export.report import write_report_json
from hemascope.export.report_figure import write_report_png
from hemascope.files import atomic_write_json
from hemascope.results import SlideResult

#: Marker file written last into an exports folder: the exports are complete.
EXPORTS_COMPLETE = "EXPORTED"


def exports_complete(directory: str | Path) -> bool:
    """Whether :func:`export_all` finished writing into ``directory``."""
    return (Path(directory) / EXPORTS_COMPLETE).is_file()


def export_all(result: SlideResult, directory: str | Path) -> dict[str, Path]:
    """Write every headless export of ``result`` into ``directory``.

    Parameters
    ----------
    result
        An analysed slide.
    directory
        Output folder (created if needed). The marker :data:`EXPORTS_COMPLETE` is removed first
        and written last, so an interrupted or failed export never looks complete.

    Returns
    -------
    dict of str to Path
        ``{"cells_csv", "cells_parquet", "geojson", "report_json", "report_png"}`` to paths. Cells
        are outlined by their masks when the result has a label mask, else by circles of their area.
    """
    from hemascope.export.geojson import write_geojson
    from hemascope.export.tables import write_cell_table

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / EXPORTS_COMPLETE
    marker.unlink(missing_ok=True)
    labels = nuclei = None
    if result.labels_path is not None and Path(result.labels_path).is_dir():
        import zarr

        store = zarr.open_group(str(result.labels_path), mode="r")
        labels = store["labels/cells/0"]
        groups = store["labels"]
        nuclei = (
            store["labels/nuclei/0"]
            if isinstance(groups, zarr.Group) and "nuclei" in groups
            else None
        )
    paths = {
        "cells_csv": write_cell_table(directory / "cells.csv", result.cells),
        "cells_parquet": write_cell_table(directory / "cells.parquet", result.cells),
        "geojson": write_geojson(directory / "cells.geojson", result.cells, labels=labels, nuclei=nuclei,
                                 mpp=result.slide.get("mpp")),
        "report_json": write_report_json(directory / "report.json", result),
        "report_png": write_report_png(directory / "report.png", result),
    }
    atomic_write_json(marker, {name: p.name for name, p in paths.items()})
    return paths


__all__ = ["EXPORTS_COMPLETE", "export_all", "exports_complete"]
