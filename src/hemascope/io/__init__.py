"""Slide I/O: lazy pyramidal readers (tifffile + zarr + dask) and streamed writers.

:func:`open_slide` reads, without touching level-0 pixels:

=========================  ================  ==================================================
file                       ``format``        µm/px and objective from
=========================  ================  ==================================================
pyramidal TIFF / BigTIFF   ``tiff``          TIFF resolution + unit (screen DPI is ignored)
OME-TIFF                   ``ome-tiff``      OME ``PhysicalSizeX`` (+ unit), ``NominalMagnification``
Aperio SVS                 ``svs``           ``MPP`` and ``AppMag`` in the ImageDescription
Hamamatsu NDPI             ``ndpi``          TIFF resolution, NDPI ``Magnification`` tag
Philips TIFF               ``philips-tiff``  ``DICOM_PIXEL_SPACING`` in the XML (empty tiles white)
OME-Zarr v0.1-v0.5         ``ome-zarr``      level-0 ``scale`` with a length unit (bioformats2raw too)
DICOM-WSI                  ``dicom``         base pixel spacing (extra ``dicom``, else OpenSlide)
PNG, JPEG, BMP, WebP       ``image``         never (pass ``mpp=``); pyramid computed lazily
MRXS, SCN, BIF, VMS, ...   ``openslide``     OpenSlide's properties (extra ``openslide``)
=========================  ================  ==================================================

A single-level TIFF also gets a lazily computed pyramid. Writers:
:func:`write_pyramidal_tiff` (streamed tile by tile) and :func:`write_ome_zarr` (with label
pyramids). Damaged or unsupported input raises :class:`~hemascope.errors.SlideError` subclasses:
decoding is strict (a tile libjpeg decodes only "with warnings" is corrupt), claimed sizes are
bounded (:mod:`hemascope.io.limits`), OME-Zarr stores are read through a guarded store that never
leaves the store's directory or reads special files (:mod:`hemascope.io.zarr_guard`). The suffixes
recognised are listed once, in :mod:`hemascope.io.formats`. :func:`hemascope.io.smear_check.
smear_likeness` tells smears from tissue sections.
"""

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
