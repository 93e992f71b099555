"""Per-region checkpoints of a run: what makes :func:`hemascope.analyze_slide` resumable.

Each finished region of a slide is saved in ``<out_dir>/regions/`` as soon as it is done: its cell
table (with class probabilities), its embeddings and its per-cell masks. Every file is written
atomically and the table last, so a region is either finished (table present, row counts agree)
or absent; after a ``kill -9`` a resumed run reloads the finished regions and redoes the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hemascope.files import atomic_path, atomic_write_json, atomic_write_npy, atomic_write_table
from hemascope.results import read_cell_table

REGIONS_DIR = "regions"


@dataclass
class RegionOutput:
    """Cells found in one region: the table (with class columns) and their embeddings."""

    index: int
    cells: pd.DataFrame
    embeddings: np.ndarray | None
    seconds: dict[str, float]
    masks: list[Any] | None = None


class RegionCheckpoints:
    """Finished regions of one run, in ``<out_dir>/regions``: per region a table, embeddings, masks.

    The embeddings and masks are written first and the cell table last (each atomically), so a
    region is finished exactly when its table exists and its row count matches the other two.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.directory = Path(out_dir) / REGIONS_DIR

    def _paths(self, index: int) -> tuple[Path, Path, Path]:
        stem = self.directory / f"region_{index:06d}"
        return stem.with_suffix(".parquet"), stem.with_suffix(".npy"), stem.with_suffix(".masks.npz")

    def save(self, output: RegionOutput) -> None:
        """Write one finished region atomically (embeddings and masks first, table last)."""
        from hemascope.export.labels import pack_cell_masks

        table, emb, masks = self._paths(output.index)
        if output.embeddings is not None:
            atomic_write_npy(emb, output.embeddings)
        if output.masks is not None:
            with atomic_path(masks) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, allow_pickle=False, **pack_cell_masks(output.masks))
        cells = output.cells.copy()
        cells.attrs = {"seconds": dict(output.seconds)}  # kept in the Parquet metadata
        atomic_write_table(table, cells)

    def load(self, index: int) -> RegionOutput | None:
        """A finished region, or ``None`` if it is not (completely) saved."""
        from hemascope.export.labels import unpack_cell_masks

        table, emb, mask_file = self._paths(index)
        if not table.is_file():
            return None
        cells = read_cell_table(table)
        embeddings = np.load(emb, allow_pickle=False) if emb.is_file() else None
        masks = None
        if mask_file.is_file():
            with np.load(mask_file, allow_pickle=False) as packed:
                masks = unpack_cell_masks(packed)
        if any(x is not None and len(x) != len(cells) for x in (embeddings, masks)):
            return None  # a crash between the writes of a re-run region: redo it
        seconds = dict(cells.attrs.get("seconds", {}))
        cells.attrs = {}
        return RegionOutput(index, cells, embeddings, seconds, masks)

    def save_smear(self, smear: Any) -> None:
        """Keep the slide's smear mask with the run (workers that finish the slide need it)."""
        atomic_write_npy(self.directory / "smear_mask.npy", smear.mask)
        atomic_write_json(self.directory / "smear_mask.json", {"downsample": smear.downsample, "background": smear.background})

    def load_smear(self) -> Any:
        """The smear mask saved by :meth:`save_smear`."""
        from hemascope.segment.smear import SmearMask

        meta = json.loads((self.directory / "smear_mask.json").read_text(encoding="utf-8"))
        mask = np.load(self.directory / "smear_mask.npy", allow_pickle=False)
        return SmearMask(mask, float(meta["downsample"]), tuple(meta["background"]))

    def finished(self) -> set[int]:
        """Indices of the regions whose table exists."""
        if not self.directory.is_dir():
            return set()
        return {int(p.name[7:13]) for p in self.directory.glob("region_*.parquet")}


__all__ = ["REGIONS_DIR", "RegionCheckpoints", "RegionOutput"]
