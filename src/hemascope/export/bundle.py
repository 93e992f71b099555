"""Every headless export of a :class:`~hemascope.results.SlideResult` into one folder.

The exports are the table :data:`hemascope.export.registry.EXPORTS`; this module writes them and
marks the folder complete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from hemascope.errors import InvalidInputError
from hemascope.export.registry import ALL_EXPORTS, select_exports
from hemascope.files import atomic_write_json
from hemascope.results import SlideResult

#: Marker file written last into an exports folder: the exports are complete.
EXPORTS_COMPLETE = "EXPORTED"


def exports_complete(directory: str | Path, names: Sequence[str] | None = None) -> bool:
    """Whether :func:`export_all` finished writing into ``directory`` (and, given ``names``, wrote those).

    The marker lists the exports written; without ``names`` any finished marker counts (markers
    of older versions, and of a run asked for some exports only).
    """
    marker = Path(directory) / EXPORTS_COMPLETE
    if not marker.is_file():
        return False
    if names is None:
        return True
    try:
        written = set(json.loads(marker.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return False
    return set(names) <= written


def export_all(
    result: SlideResult,
    directory: str | Path,
    names: str | Sequence[str] | None = None,
) -> dict[str, Path]:
    """Write the headless exports of ``result`` into ``directory``.

    Parameters
    ----------
    result
        An analysed slide.
    directory
        Output folder (created if needed). The marker :data:`EXPORTS_COMPLETE` is removed first
        and written last, so an interrupted or failed export never looks complete.
    names
        Which exports (names of :data:`~hemascope.export.registry.EXPORTS`, a sequence or
        comma-separated); ``None`` or ``"all"``: every one.

    Returns
    -------
    dict of str to Path
        Export name to path, e.g. ``{"cells_csv", "cells_parquet", "geojson", "report_json",
        "report_png"}`` for every export.

    Raises
    ------
    InvalidInputError
        An unknown export name, or one that places cells in one picture (GeoJSON) named for a
        pooled result (without names, those are left out for it).
    """
    exports = select_exports(names)
    if result.pooled:  # its cells lie in several pictures: nothing placed in one picture's pixels
        one_picture = [e.name for e in exports if e.one_picture]
        if one_picture and names is not None and names != ALL_EXPORTS:
            raise InvalidInputError(f"{', '.join(one_picture)}: a pooled result's cells lie in "
                                    f"{result.slide.get('n_fields', 'several')} pictures; export each field's result")
        exports = tuple(e for e in exports if not e.one_picture)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / EXPORTS_COMPLETE
    marker.unlink(missing_ok=True)
    paths: dict[str, Path] = {}
    for export in exports:
        if export.write is not None:  # always: select_exports returns bundle exports only
            paths[export.name] = export.write(result, directory / export.file_name)
    atomic_write_json(marker, {name: p.name for name, p in paths.items()})
    return paths


__all__ = ["EXPORTS_COMPLETE", "export_all", "exports_complete"]
