"""The one list of slide file suffixes and magic numbers hemascope recognises.

``io.open`` dispatches on them, the napari reader hook claims exactly these suffixes, and the
plugin manifest's ``filename_patterns`` are tested against :data:`SLIDE_SUFFIXES`
(``tests/napari/test_manifest.py``), so the library, the CLI and napari accept the same files.
"""

from __future__ import annotations

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
"""Classic TIFF and BigTIFF headers, both byte orders."""

IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM")
"""PNG, JPEG and BMP headers (flat images; WebP's is checked by :func:`is_flat_image`)."""

TIFF_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".btf", ".tf2", ".tf8")
"""TIFF-family files read by hemascope's own TIFF reader (the magic number decides, not this)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
"""Flat images."""

PICTURE_SUFFIXES = IMAGE_SUFFIXES + (".tif", ".tiff")
"""Files read whole as one picture: single-cell crops and mask images (TIFF included)."""

OPENSLIDE_SUFFIXES = (".mrxs", ".vms", ".vmu", ".scn", ".bif", ".svslide")
"""Vendor formats handed to OpenSlide (``.scn``/``.bif`` are TIFF-based but need its logic)."""

DICOM_SUFFIXES = (".dcm",)
"""DICOM-WSI instances (read through OpenSlide; a directory of them is opened through any one)."""

ZARR_SUFFIXES = (".zarr",)
"""OME-Zarr directories (any directory holding zarr metadata is also recognised)."""

SLIDE_SUFFIXES = (
    TIFF_SUFFIXES + IMAGE_SUFFIXES + OPENSLIDE_SUFFIXES + DICOM_SUFFIXES + ZARR_SUFFIXES
)
"""Every suffix a slide file or directory may have (lower case)."""

ZARR_MARKERS = ("zarr.json", ".zgroup", ".zattrs", ".zarray")
"""Files whose presence makes a directory a zarr node."""


def is_flat_image(head: bytes) -> bool:
    """Whether a file's first 12 bytes or more are a PNG, JPEG, BMP or WebP header."""
    return head.startswith(IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def manifest_patterns() -> list[str]:
    """The napari manifest's ``filename_patterns`` for the slide reader (``*.tif``, ...)."""
    return [f"*{suffix}" for suffix in SLIDE_SUFFIXES]
