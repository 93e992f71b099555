"""The :class:`Slide`: a whole-slide image as lazy dask levels with physical scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from hemascope.errors import InvalidInputError
from hemascope.io.tiles import level_downsample

#: A file holding one level of up to this many pixels (a camera's TIFF) is a picture, like a PNG.
PICTURE_MAX_PIXELS = 50_000_000


@dataclass
class Slide:
    """A pyramidal RGB image, opened lazily.

    Attributes
    ----------
    levels
        One dask array per pyramid level, each ``(rows, cols, 3)`` uint8, level 0 the largest.
        Dask chunks follow the file's tiles. Nothing is read until computed.
    mpp
        Micrometres per pixel of level 0 (``None`` when the file does not record it).
    path
        The file or directory the slide came from (``None`` for in-memory images).
    format
        Short format name: ``"ome-tiff"``, ``"svs"``, ``"ndpi"``, ``"tiff"``, ``"ome-zarr"``,
        ``"image"``, ``"openslide"``, ``"memory"``.
    objective_power
        Nominal objective magnification when the file records it.
    metadata
        Format-specific metadata (plain JSON-able values).
    mpp_source
        Where ``mpp`` came from: ``"file"``, ``"user"``, ``"estimated"`` or ``None``.
    """

    levels: list[da.Array]
    mpp: float | None = None
    path: Path | None = None
    format: str = "memory"
    objective_power: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    mpp_source: str | None = None
    _closers: list[Any] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self.levels:
            raise InvalidInputError("a slide needs at least one level")
        if self.mpp is not None and self.mpp_source is None:
            self.mpp_source = "file"

    # --- geometry -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """File name without directories (``"memory"`` for in-memory slides)."""
        return self.path.name if self.path is not None else "memory"

    @property
    def shape(self) -> tuple[int, int]:
        """Level-0 ``(rows, cols)``."""
        return tuple(int(s) for s in self.levels[0].shape[:2])  # type: ignore[return-value]

    @property
    def is_picture(self) -> bool:
        """Whether this is one photograph rather than a scanned slide: a plain picture (PNG, JPEG,
        ...), an in-memory image, or a file holding a single level of at most
        :data:`PICTURE_MAX_PIXELS` (a microscope camera's TIFF). Pictures are handled alike
        whatever their format: label images beside them, their scale pooled with others of their
        pixel size, a photographed field's illumination measured."""
        rows, cols = self.shape
        one_level = self.metadata.get("pyramid") == "computed"  # the file holds no pyramid of its own
        return self.format in ("image", "memory") or (one_level and rows * cols <= PICTURE_MAX_PIXELS)

    @property
    def n_levels(self) -> int:
        """Number of pyramid levels."""
        return len(self.levels)

    @property
    def level_shapes(self) -> list[tuple[int, int]]:
        """``(rows, cols)`` of every level."""
        return [(int(a.shape[0]), int(a.shape[1])) for a in self.levels]

    @property
    def downsamples(self) -> list[float]:
        """Downsample factor of each level relative to level 0 (exact powers of two for 2x pyramids)."""
        shape0 = self.level_shapes[0]
        return [level_downsample(shape0, s) for s in self.level_shapes]

    def level_mpp(self, level: int) -> float | None:
        """Micrometres per pixel of ``level`` (``None`` when unknown)."""
        if self.mpp is None:
            return None
        return self.mpp * self.downsamples[level]

    def best_level_for_mpp(self, target_mpp: float) -> int:
        """The coarsest level whose µm/px is at most ``target_mpp`` (level 0 if none, or mpp unknown)."""
        if self.mpp is None:
            return 0
        best = 0
        for i in range(self.n_levels):
            if self.level_mpp(i) <= target_mpp * 1.0001:  # type: ignore[operator]
                best = i
        return best

    # --- pixels ---------------------------------------------------------------------------
    def read_region(self, level: int, row: int, col: int, height: int, width: int) -> np.ndarray:
        """Read a ``(height, width, 3)`` uint8 region of ``level`` with its top-left at (row, col).

        Coordinates are in that level's pixels. Parts outside the image are filled with white
        (glass), so a region can always be requested around a cell near the border. Levels of
        tiled files are read by decoding just the tiles touched (no dask graph); others through
        dask.

        Parameters
        ----------
        level
            Pyramid level (0 = full resolution).
        row, col
            Top-left corner in that level's pixels (may be negative or beyond the image).
        height, width
            Region size in pixels (positive).

        Returns
        -------
        numpy.ndarray
            ``(height, width, 3)`` uint8.

        Raises
        ------
        InvalidInputError
            For a level that does not exist or a non-positive size.
        CorruptSlideError
            When a tile in the region cannot be decoded.
        """
        if not 0 <= level < self.n_levels:
            raise InvalidInputError(f"level {level} does not exist (slide has {self.n_levels})")
        if height <= 0 or width <= 0:
            raise InvalidInputError(f"region size must be positive, got {height}x{width}")
        arr = self.levels[level]
        rows, cols = arr.shape[:2]
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, rows), min(col + width, cols)
        if r1 <= r0 or c1 <= c0:
            return np.full((height, width, 3), 255, dtype=np.uint8)
        reader = getattr(arr, "region_reader", None)  # tiled files: decode just the tiles touched
        if reader is not None:
            block = reader.read(r0, c0, r1 - r0, c1 - c0)
        else:
            block = np.asarray(arr[r0:r1, c0:c1, :3])
        if (r0, c0, r1 - r0, c1 - c0) == (row, col, height, width):
            return block
        out = np.full((height, width, 3), 255, dtype=np.uint8)
        out[r0 - row : r1 - row, c0 - col : c1 - col] = block
        return out

    def thumbnail(self, max_size: int = 1024) -> np.ndarray:
        """The smallest level whose longer side is at least ``max_size`` (or the smallest), as numpy."""
        level = self.n_levels - 1
        for i in range(self.n_levels):
            if max(self.level_shapes[i]) >= max_size:
                level = i
        return np.asarray(self.levels[level])

    # --- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Close file handles held by the readers."""
        for closer in self._closers:
            try:
                closer.close()
            except Exception:  # noqa: BLE001 - closing must never raise
                pass
        self._closers.clear()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def slide_from_array(image: np.ndarray, mpp: float | None = None, name: str | None = None) -> Slide:
    """Wrap an in-memory RGB uint8 image ``(rows, cols, 3)`` as a one-level :class:`Slide`."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise InvalidInputError(
            f"expected an RGB uint8 image (rows, cols, 3), got shape {image.shape} dtype {image.dtype}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InvalidInputError("image has zero size")
    level = da.from_array(np.ascontiguousarray(image[..., :3]), chunks=(1024, 1024, 3))
    slide = Slide(levels=[level], mpp=mpp, path=Path(name) if name else None, format="memory")
    slide.mpp_source = "user" if mpp is not None else None
    return slide
