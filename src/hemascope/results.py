""":class:`SlideResult`, the saved outcome of analysing one slide.

Its files are written atomically (:mod:`hemascope.files`). A saved result directory is only *complete* once its marker file :data:`COMPLETE_MARKER` exists,
and the marker is written last.

Layout of a result directory::

    cells.parquet      one row per cell (level-0 px, µm, class, probabilities)
    embeddings.npy     (n_cells, d) float32 cell embeddings (optional)
    smear_mask.npy     low-resolution boolean smear mask (optional)
    config.toml        the AnalysisConfig used
    result.json        differential count, subtype, provenance, file checksums
    COMPLETE           completion marker (written last)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hemascope.config import AnalysisConfig
from hemascope.errors import ResultError
from hemascope.files import (
    atomic_write_json,
    atomic_write_npy,
    atomic_write_table,
    remove_path,
    sha256_file,
)

COMPLETE_MARKER = "COMPLETE"
RESULT_FORMAT_VERSION = 1
#: ``slide["format"]`` of a result pooled from several pictures (:mod:`hemascope.pooled`).
POOLED_FORMAT = "pooled fields"


def read_cell_table(path: str | Path) -> pd.DataFrame:
    """Read a Parquet cell table with text columns as ``object`` (as the pipeline makes them).

    Parameters
    ----------
    path
        A ``.parquet`` file written by :func:`atomic_write_table`.

    Returns
    -------
    pandas.DataFrame
    """
    table = pd.read_parquet(path)
    text = [c for c in table.columns if pd.api.types.is_string_dtype(table[c]) and table[c].dtype != object]
    return table.astype({c: object for c in text}) if text else table


def is_complete(directory: str | Path) -> bool:
    """Whether ``directory`` holds a completely saved :class:`SlideResult` (marker present)."""
    return (Path(directory) / COMPLETE_MARKER).is_file()


#: Where ``hemascope analyze --pool`` saves its folders' pooled results, under its output root.
POOLED_DIR = "pooled"


def result_folders(path: str | Path) -> list[Path]:
    """The result folders ``path`` names: itself when it holds a result, else the complete results
    directly inside it (the ``--out`` folder of ``hemascope analyze``, one sub-folder per slide, and
    ``pooled/`` below it: its folders' results), sorted by name.

    Returns ``[path]`` when neither is found, so that loading it says what is wrong.
    """
    path = Path(path)
    if is_complete(path) or not path.is_dir():
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and is_complete(p))
    pooled = path / POOLED_DIR
    if pooled.is_dir() and not is_complete(pooled):
        found += sorted(p for p in pooled.iterdir() if p.is_dir() and is_complete(p))
    return found or [path]


# --- the result ----------------------------------------------------------------------------------
@dataclass
class SlideResult:
    """Everything found on one slide, with how it was found.

    Attributes
    ----------
    cells
        The cell table: one row per cell, positions in level-0 pixels and µm, and (when
        classified) ``class``, ``confidence`` and ``prob_<class>`` columns.
    embeddings
        ``(n_cells, d)`` float32 embeddings in the row order of ``cells`` (``None`` if absent).
    differential
        The differential count as plain values (counts, percentages, confidence intervals, blast %).
    subtype
        The primary slide-level subtype prediction (probabilities, label or abstention, model,
        version), or ``None``.
    subtypes
        Every bag model's prediction side by side (the first is ``subtype``).
    smear_mask
        Low-resolution boolean smear mask (``None`` if absent).
    smear_mask_downsample
        Level-0 pixels per smear-mask pixel.
    labels_path
        Where the cell label mask (OME-Zarr) was written, if any.
    slide
        Slide facts: ``path``, ``shape`` (level-0 rows, cols), ``mpp``, ``mpp_source``, ``format``.
    config
        The :class:`~hemascope.config.AnalysisConfig` used.
    provenance
        hemascope version, segmenter and its version, model names and sha256, timings (s).
    checks
        Slide-level checks (:mod:`hemascope.slide.checks`): ``smear`` and ``domain_shift``, each
        ``{"ok", "score", "reason"}``; a failed one withholds the blast % and slide predictions.
    """

    cells: pd.DataFrame
    embeddings: np.ndarray | None = None
    differential: dict[str, Any] = field(default_factory=dict)
    subtype: dict[str, Any] | None = None
    subtypes: list[dict[str, Any]] = field(default_factory=list)
    smear_mask: np.ndarray | None = None
    smear_mask_downsample: float = 1.0
    labels_path: Path | None = None
    slide: dict[str, Any] = field(default_factory=dict)
    config: AnalysisConfig = field(default_factory=AnalysisConfig)
    provenance: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        """Number of cells found."""
        return len(self.cells)

    @property
    def pooled(self) -> bool:
        """Whether the cells lie in several pictures (fields of one specimen counted together)."""
        return self.slide.get("format") == POOLED_FORMAT

    def save(self, directory: str | Path) -> Path:
        """Save to ``directory`` atomically, file by file, writing the completion marker last.

        An existing marker is removed first, so an interrupted re-save never looks complete.

        Parameters
        ----------
        directory
            Output directory (created if needed).

        Returns
        -------
        Path
            ``directory``.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        marker = directory / COMPLETE_MARKER
        remove_path(marker)
        files: dict[str, str] = {}

        def _track(path: Path) -> None:
            files[path.name] = sha256_file(path)

        _track(atomic_write_table(directory / "cells.parquet", self.cells))
        for name, array in (("embeddings.npy", self.embeddings), ("smear_mask.npy", self.smear_mask)):
            if array is not None:
                _track(atomic_write_npy(directory / name, array))
            else:
                remove_path(directory / name)
        _track(self.config.save(directory / "config.toml"))
        labels = None
        if self.labels_path is not None:
            labels_path = Path(self.labels_path)
            labels = labels_path.name if labels_path.parent.resolve() == directory.resolve() else str(labels_path)
        meta = {
            "format_version": RESULT_FORMAT_VERSION,
            "n_cells": self.n_cells,
            "differential": self.differential,
            "subtype": self.subtype,
            "subtypes": self.subtypes,
            "smear_mask_downsample": self.smear_mask_downsample,
            "labels_path": labels,
            "slide": self.slide,
            "provenance": self.provenance,
            "checks": self.checks,
            "files": files,
        }
        result_json = atomic_write_json(directory / "result.json", meta)
        atomic_write_json(marker, {"result.json": sha256_file(result_json)})
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True) -> SlideResult:
        """Load a result saved by :meth:`save`.

        Parameters
        ----------
        directory
            The result directory.
        verify
            Check every file against the SHA-256 recorded when it was saved.

        Returns
        -------
        SlideResult

        Raises
        ------
        ResultError
            If the directory is missing, incomplete (no marker: the save was interrupted) or a file
            does not match its checksum.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise ResultError(f"no result directory at {directory}")
        if not is_complete(directory):
            raise ResultError(f"{directory} holds no complete result (the run was interrupted or is still going)")
        try:
            meta = json.loads((directory / "result.json").read_text(encoding="utf-8"))
            marker = json.loads((directory / COMPLETE_MARKER).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ResultError(f"{directory}: unreadable result metadata ({exc})") from None
        if verify:
            if marker.get("result.json") != sha256_file(directory / "result.json"):
                raise ResultError(f"{directory}/result.json does not match its completion marker")
            for name, digest in meta.get("files", {}).items():
                path = directory / name
                if not path.is_file() or sha256_file(path) != digest:
                    raise ResultError(f"{path} is missing or was changed after the result was saved")
        cells = read_cell_table(directory / "cells.parquet")
        arrays = {}
        for name in ("embeddings", "smear_mask"):
            path = directory / f"{name}.npy"
            arrays[name] = np.load(path, allow_pickle=False) if path.is_file() else None
        labels = meta.get("labels_path")
        labels_path = None if labels is None else (directory / labels if not Path(labels).is_absolute() else Path(labels))
        return cls(
            cells=cells,
            embeddings=arrays["embeddings"],
            differential=meta.get("differential") or {},
            subtype=meta.get("subtype"),
            subtypes=meta.get("subtypes") or [],
            smear_mask=arrays["smear_mask"],
            smear_mask_downsample=float(meta.get("smear_mask_downsample", 1.0)),
            labels_path=labels_path,
            slide=meta.get("slide") or {},
            config=AnalysisConfig.from_toml(directory / "config.toml"),
            provenance=meta.get("provenance") or {},
            checks=meta.get("checks") or {},
        )


__all__ = [
    "COMPLETE_MARKER",
    "POOLED_FORMAT",
    "SlideResult",
    "is_complete",
    "read_cell_table",
]
