"""Metadata of TIFF-family slides: format name, µm/px, objective power, compression name.

Only the file's own tags and descriptions are read (never pixels). Values outside plausible ranges
(e.g. 72 dpi screen resolution) mean "unknown" rather than a wrong scale.
"""

from __future__ import annotations

import math
from typing import Any

_UNIT_TO_UM = {"pm": 1e-6, "nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}
PLAUSIBLE_MPP = (0.01, 50.0)
"""µm/px outside this range (e.g. 72 dpi screen resolution) is treated as unknown."""


def plausible_mpp(mpp: float | None) -> float | None:
    """``mpp`` as a float if it is a finite value inside :data:`PLAUSIBLE_MPP`, else ``None``."""
    if mpp is None or not math.isfinite(mpp) or not PLAUSIBLE_MPP[0] <= mpp <= PLAUSIBLE_MPP[1]:
        return None
    return float(mpp)


def _float_or_none(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return out if math.isfinite(out) and out > 0 else None


def compression_name(page: Any) -> str:
    """Lower-case name of a page's compression (``"none"`` without a Compression tag).

    tifffile returns a plain ``int`` (not its ``COMPRESSION`` enum) for codes it does not know and,
    in some versions, for files without the tag; both are named here instead of failing.
    """
    value = page.compression
    name = getattr(value, "name", None)
    if name:
        return str(name).lower()
    import tifffile

    try:
        return tifffile.COMPRESSION(int(value)).name.lower()
    except ValueError:
        return f"unknown-{int(value)}"


def _resolution_mpp(page: Any) -> float | None:
    import tifffile

    if page.resolutionunit in (tifffile.RESUNIT.NONE, None) or 282 not in page.tags:
        return None
    try:
        px_per_um = page.get_resolution(tifffile.RESUNIT.MICROMETER)[0]
    except Exception:  # noqa: BLE001 - odd resolution tags mean "unknown"
        return None
    return plausible_mpp(1.0 / px_per_um) if px_per_um and px_per_um > 0 else None


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def _ome_metadata(tif: Any) -> tuple[float | None, float | None, dict[str, Any]]:
    import tifffile

    ome = tifffile.xml2dict(tif.ome_metadata).get("OME", {})
    image = _first(ome.get("Image", {}))
    image = image if isinstance(image, dict) else {}
    pixels = image.get("Pixels", {})
    pixels = pixels if isinstance(pixels, dict) else {}
    mpp = None
    if "PhysicalSizeX" in pixels:
        unit = pixels.get("PhysicalSizeXUnit", "µm")
        size = _float_or_none(pixels["PhysicalSizeX"])
        if size is not None:
            mpp = plausible_mpp(size * _UNIT_TO_UM.get(str(unit), float("nan")))
    instrument = _first(ome.get("Instrument", {}))
    objective = _first(instrument.get("Objective", {})) if isinstance(instrument, dict) else {}
    power = objective.get("NominalMagnification") if isinstance(objective, dict) else None
    return mpp, _float_or_none(power), {"ome_name": image.get("Name")}


def philips_mpp(xml: str | None) -> float | None:
    """Level-0 µm/px from a Philips TIFF's XML (``DICOM_PIXEL_SPACING``, in mm, rows then columns).

    Parameters
    ----------
    xml
        ``TiffFile.philips_metadata`` (the ImageDescription of the first page).

    Returns
    -------
    float or None
        The column spacing in µm (as OpenSlide reports it), ``None`` when absent or implausible.
    """
    if not xml:
        return None
    from xml.etree import ElementTree

    try:
        tree = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    path = (
        './/*/DataObject[@ObjectType="PixelDataRepresentation"]'
        '/Attribute[@Name="DICOM_PIXEL_SPACING"]'
    )
    for elem in tree.findall(path):
        values = [_float_or_none(v) for v in (elem.text or "").replace('"', " ").split()]
        if values and all(v is not None for v in values):
            return plausible_mpp(values[-1] * 1000.0)  # type: ignore[operator]
    return None


def file_metadata(tif: Any, page: Any) -> tuple[str, float | None, float | None, dict[str, Any]]:
    """Format name, µm/px, objective power and extra metadata from the file's own tags.

    Parameters
    ----------
    tif
        The open ``tifffile.TiffFile``.
    page
        The level-0 keyframe.

    Returns
    -------
    tuple
        ``(format, mpp or None, objective power or None, extra metadata)``.
    """
    from tifffile import tifffile as tf

    extra: dict[str, Any] = {"bigtiff": bool(tif.is_bigtiff)}
    mpp, objective = None, None
    if tif.is_svs:
        fmt = "svs"
        desc = tf.svs_description_metadata(page.description)
        mpp = plausible_mpp(_float_or_none(desc.get("MPP")))
        objective = _float_or_none(desc.get("AppMag"))
        extra["aperio"] = {k: v for k, v in desc.items() if isinstance(v, str | int | float)}
    elif tif.is_ndpi:
        fmt = "ndpi"
        tags = page.ndpi_tags or {}
        objective = _float_or_none(tags.get("Magnification"))
    elif tif.is_ome:
        fmt = "ome-tiff"
        mpp, objective, more = _ome_metadata(tif)
        extra.update(more)
    elif tif.is_philips:
        fmt = "philips-tiff"
        mpp = philips_mpp(tif.philips_metadata)
    else:
        fmt = "tiff"
        if page.description:
            extra["description"] = page.description[:1000]
    if mpp is None:
        mpp = _resolution_mpp(page)
    return fmt, mpp, objective, extra
