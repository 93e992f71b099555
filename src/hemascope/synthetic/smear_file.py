"""Writing a synthetic smear as a pyramidal OME-TIFF, tile by tile, with its ground truth."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np

from hemascope.errors import InvalidInputError
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report
from hemascope.synthetic.render import SmearRenderer
from hemascope.synthetic.spec import SmearSpec
from hemascope.synthetic.truth import GroundTruth, slide_label, truth_paths, truth_table

#: Tile edge of the written slides (pixels).
TILE_SIZE = 512

_WORKER_RENDERER: SmearRenderer | None = None


def _worker_init(spec_dict: dict) -> None:
    global _WORKER_RENDERER
    _WORKER_RENDERER = SmearRenderer(SmearSpec.from_dict(spec_dict))


def _worker_render(row: int, col: int, height: int, width: int) -> np.ndarray:
    assert _WORKER_RENDERER is not None
    return _WORKER_RENDERER.render(row, col, height, width).image


class SmearTileSource:
    """A :class:`hemascope.io.TileSource` that renders a synthetic smear on demand.

    Parameters
    ----------
    spec
        The smear.
    workers
        Processes rendering tiles ahead of the reader (1 renders in the calling thread). Tiles are
        expected in row-major order of ``tile_size`` tiles (what the pyramid writers do); other
        requests are rendered directly.
    tile_size
        Tile edge the reader will request.
    progress, cancel
        Progress callback (tiles done of total) and cancel token, checked before every tile.
    """

    def __init__(
        self,
        spec: SmearSpec,
        *,
        workers: int = 1,
        tile_size: int = TILE_SIZE,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        if workers < 1:
            raise InvalidInputError(f"workers must be >= 1, got {workers}")
        self.spec = spec
        self.renderer = SmearRenderer(spec)
        self._progress = progress
        self._cancel = cancel
        rows, cols = spec.size
        self._tiles = [
            (r, c, min(tile_size, rows - r), min(tile_size, cols - c))
            for r in range(0, rows, tile_size)
            for c in range(0, cols, tile_size)
        ]
        self._index = {t: i for i, t in enumerate(self._tiles)}
        self._done = 0
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[int, Future] = {}
        self._ahead = 3 * workers
        if workers > 1:
            self._pool = ProcessPoolExecutor(
                workers, initializer=_worker_init, initargs=(spec.to_dict(),)
            )

    @property
    def shape(self) -> tuple[int, int]:
        """Level-0 ``(rows, cols)``."""
        return self.spec.size

    @property
    def n_tiles(self) -> int:
        """Number of level-0 tiles."""
        return len(self._tiles)

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """Render the RGB uint8 region ``(height, width, 3)`` with top-left ``(row, col)``."""
        check_cancelled(self._cancel)
        key = (row, col, height, width)
        i = self._index.get(key)
        if self._pool is not None and i is not None:
            for j in range(i, min(i + self._ahead, len(self._tiles))):
                if j not in self._futures:
                    self._futures[j] = self._pool.submit(_worker_render, *self._tiles[j])
            image = self._futures.pop(i).result()
        else:
            image = self.renderer.render(row, col, height, width).image
        self._done += 1
        report(self._progress, min(self._done, self.n_tiles), self.n_tiles, "rendering tiles")
        return image

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            for f in self._futures.values():
                f.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._futures.clear()

    def __enter__(self) -> SmearTileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_masks(path: Path, renderer: SmearRenderer, cancel: CancelToken | None) -> None:
    """Write cell and nucleus instance labels as two tiled, zlib-compressed uint32 pages."""
    import tifffile

    rows, cols = renderer.spec.size

    def tiles(which: str) -> Iterator[np.ndarray]:
        for r in range(0, rows, TILE_SIZE):
            for c in range(0, cols, TILE_SIZE):
                check_cancelled(cancel)
                reg = renderer.render(
                    r, c, min(TILE_SIZE, rows - r), min(TILE_SIZE, cols - c), labels=True
                )
                lab = reg.cell_labels if which == "cell" else reg.nucleus_labels
                assert lab is not None  # rendered with labels=True
                out = np.zeros((TILE_SIZE, TILE_SIZE), dtype=np.uint32)
                out[: lab.shape[0], : lab.shape[1]] = lab
                yield out

    from hemascope.files import atomic_path

    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=rows * cols * 4 > 2**31) as tif:
        for which in ("cell", "nucleus"):
            tif.write(
                tiles(which),
                shape=(rows, cols),
                dtype=np.uint32,
                tile=(TILE_SIZE, TILE_SIZE),
                compression="zlib",
                description=f"hemascope {which} instance labels",
            )


def make_smear(
    path: str | os.PathLike[str],
    spec: SmearSpec,
    masks: bool = False,
    *,
    workers: int = 1,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> GroundTruth:
    """Generate a synthetic smear slide file and its ground truth.

    Writes ``path`` as a pyramidal OME-TIFF (JPEG tiles of 512, at least 3 levels, µm/px recorded,
    quality ``spec.shift.jpeg_quality`` or 90) streamed tile by tile, so memory stays bounded
    whatever ``spec.size``; then ``<stem>.cells.csv`` and ``<stem>.truth.json`` next to it, and
    ``<stem>.masks.tif`` (cell and nucleus instance labels) when ``masks`` is true.

    Parameters
    ----------
    path
        Output slide file (e.g. ``smear.ome.tif``); its folder is created.
    spec
        The smear to generate.
    masks
        Also write the instance masks (a second rendering pass).
    workers
        Rendering processes (see :class:`SmearTileSource`).
    progress, cancel
        Progress callback and cancel token (see :mod:`hemascope.progress`).

    Returns
    -------
    GroundTruth
        The cell table and slide label (masks stay on disk; see :func:`read_masks`).

    Raises
    ------
    InvalidInputError
        If ``spec`` is not a :class:`SmearSpec` or ``path`` cannot be written.
    Cancelled
        If ``cancel`` is set; the partial slide is removed.
    """
    from hemascope.io import write_pyramidal_tiff

    if not isinstance(spec, SmearSpec):
        raise InvalidInputError(f"spec must be a SmearSpec, got {type(spec).__name__}")
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"cannot write the slide: {path} is a directory")
    quality = spec.shift.jpeg_quality or 90
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with SmearTileSource(spec, workers=workers, progress=progress, cancel=cancel) as source:
            write_pyramidal_tiff(
                path, source, mpp=spec.mpp, tile_size=TILE_SIZE, compression="jpeg", quality=quality
            )
            renderer = source.renderer
    except OSError as exc:
        raise InvalidInputError(f"cannot write the slide {path}: {exc}") from exc
    truth = GroundTruth(cells=truth_table(renderer), label=slide_label(spec))
    truth.save(path)
    if masks:
        _write_masks(truth_paths(path)["masks"], renderer, cancel)
    return truth
