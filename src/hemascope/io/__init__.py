"""Slide I/O: lazy pyramidal readers (tifffile + zarr + dask) and writers."""

from hemascope.io.slide import Slide, slide_from_array

__all__ = ["Slide", "slide_from_array", "open_slide"]


def __getattr__(name: str):
    if name == "open_slide":
        from hemascope.io.open import open_slide

        return open_slide
    raise AttributeError(name)
