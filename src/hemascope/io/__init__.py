"""Slide I/O: lazy pyramidal readers (tifffile + zarr + dask) and streamed writers."""

from hemascope.io.slide import Slide, slide_from_array
from hemascope.io.tiles import TileSource
from hemascope.io.write_tiff import write_pyramidal_tiff
from hemascope.io.write_zarr import write_ome_zarr

__all__ = [
    "Slide",
    "TileSource",
    "open_slide",
    "slide_from_array",
    "write_ome_zarr",
    "write_pyramidal_tiff",
]


def __getattr__(name: str):
    if name == "open_slide":
        from hemascope.io.open import open_slide

        return open_slide
    raise AttributeError(name)
