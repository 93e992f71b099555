"""``open_slide``: recognise a slide file or directory and hand it to the right reader."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hemascope.errors import SlideNotFoundError, UnsupportedFormatError
from hemascope.io.formats import (
    DICOM_SUFFIXES,
    OPENSLIDE_SUFFIXES,
    TIFF_MAGIC,
    is_flat_image,
)
from hemascope.io.paths import is_zarr_dir
from hemascope.io.slide import Slide
from hemascope.io.write_tiff import check_mpp


def open_slide(path: str | os.PathLike[str], *, mpp: float | None = None) -> Slide:
    """Open a whole-slide image (or a plain image) lazily.

    Parameters
    ----------
    path
        A pyramidal TIFF/BigTIFF, OME-TIFF, Aperio SVS, Hamamatsu NDPI file, an OME-Zarr (v0.4 or
        v0.5) directory, a PNG/JPEG/single-level TIFF image, a DICOM-WSI instance (with the
        ``dicom`` extra, else through OpenSlide), or (with the ``openslide`` extra) an MRXS or
        other vendor file OpenSlide reads.
    mpp
        Micrometres per pixel of level 0; overrides the file's value (``mpp_source="user"``).

    Returns
    -------
    Slide
        Levels as dask arrays whose chunks are the file's tiles; no level-0 pixel is read.

    Raises
    ------
    SlideNotFoundError
        ``path`` does not exist.
    UnsupportedFormatError
        Not a format hemascope reads, or not 8-bit RGB.
    CorruptSlideError
        The file is damaged (bad structure, missing or out-of-file tiles, zero-size levels).
    InvalidInputError
        ``mpp`` is not a positive number.
    """
    user_mpp = check_mpp(mpp)
    path = Path(path).expanduser()
    if not path.exists():
        raise SlideNotFoundError(f"{path}: no such file or directory")
    slide = _dispatch(path)
    if user_mpp is not None:
        slide.mpp = user_mpp
        slide.mpp_source = "user"
    return slide


def _dispatch(path: Path) -> Slide:
    if path.is_dir():
        if is_zarr_dir(path):
            from hemascope.io.read_zarr import open_ome_zarr

            return open_ome_zarr(path)
        raise UnsupportedFormatError(f"{path.name}: a directory that is not an OME-Zarr image")
    if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block, a device never ends
        raise UnsupportedFormatError(f"{path.name}: not a regular file")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if path.suffix.lower() in DICOM_SUFFIXES:
        from hemascope.io.read_dicom import open_dicom, wsidicom_available

        if wsidicom_available():
            return open_dicom(path)
    if path.suffix.lower() in OPENSLIDE_SUFFIXES + DICOM_SUFFIXES:
        from hemascope.io.read_openslide import open_with_openslide

        return open_with_openslide(path)
    if head.startswith(TIFF_MAGIC):
        from hemascope.io.read_tiff import open_tiff

        return open_tiff(path)
    if is_flat_image(head):
        from hemascope.io.read_image import open_image

        return open_image(path)
    if not head:
        raise UnsupportedFormatError(f"{path.name}: empty file")
    from hemascope.io.read_openslide import openslide_vendor

    if openslide_vendor(path) is not None:
        from hemascope.io.read_openslide import open_with_openslide

        return open_with_openslide(path)
    raise UnsupportedFormatError(
        f"{path.name}: not a supported slide format (TIFF/SVS/NDPI/OME-TIFF, OME-Zarr, PNG, JPEG, "
        "BMP, WebP or an OpenSlide format with the 'openslide' extra)"
    )
