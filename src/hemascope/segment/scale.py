"""Estimate the pixel size of a smear image from its red cells (median diameter ≈ 7.5 µm)."""

from __future__ import annotations

import numpy as np
from skimage import filters, measure, morphology

from hemascope.errors import InvalidInputError
from hemascope.segment.masks import fill_holes
from hemascope.segment.stain import leukocyte_tint, optical_density, total_density

#: Median diameter of a normal red cell in a dried smear, in micrometres.
RED_CELL_DIAMETER_UM = 7.5

#: Fewest isolated red cells needed for an estimate.
MIN_RED_CELLS = 5

#: Largest spread of the measured diameters (median absolute deviation / median) accepted: red
#: cells are uniform, so a wider spread means the objects are not (only) red cells.
MAX_DIAMETER_SPREAD = 0.2


def red_cell_diameters(image: np.ndarray) -> np.ndarray:
    """Equivalent diameters (pixels) of the isolated, round, pink objects (red cells) of an image.

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB.

    Returns
    -------
    numpy.ndarray
        One diameter per red cell that does not touch another object or the image border.
    """
    od = optical_density(image)
    density = filters.gaussian(total_density(od), sigma=1.0)
    if np.ptp(density) < 0.05:
        return np.zeros(0)
    threshold = max(float(filters.threshold_otsu(density)), 0.05)
    stained = fill_holes(density > threshold)
    stained = morphology.opening(stained, morphology.disk(1))
    labels = measure.label(stained)
    tint = leukocyte_tint(od)
    diameters = []
    rows, cols = labels.shape
    for region in measure.regionprops(labels, intensity_image=tint):
        r0, c0, r1, c1 = region.bbox
        if r0 == 0 or c0 == 0 or r1 == rows or c1 == cols or region.area < 30:
            continue
        if region.solidity < 0.93 or region.eccentricity > 0.7:
            continue  # clumps of touching cells, or elongated debris
        if region.intensity_mean > 0.1:
            continue  # blue-lilac: a white cell, not a red one
        diameters.append(region.equivalent_diameter_area)
    return np.asarray(diameters, dtype=float)


def estimate_mpp(image: np.ndarray, red_cell_um: float = RED_CELL_DIAMETER_UM) -> float:
    """Estimate micrometres per pixel from the median diameter of the red cells in ``image``.

    The estimate is refused rather than guessed when it cannot be trusted: too few isolated red
    cells (a white-cell close-up or single-cell crop shows one or two, cut by the border), or
    objects whose sizes vary more than red cells do (platelets, debris, clumps taken for red cells).

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB smear image (a field or a level-0 region of a slide) showing
        at least a few isolated red cells.
    red_cell_um
        Assumed median red-cell diameter.

    Returns
    -------
    float
        Estimated µm/px.

    Raises
    ------
    InvalidInputError
        If fewer than :data:`MIN_RED_CELLS` isolated red cells are found (blank image, no smear,
        white-cell close-up), or their diameters spread more than :data:`MAX_DIAMETER_SPREAD`:
        pass the pixel size explicitly instead.
    """
    diameters = red_cell_diameters(image)
    hint = "pass the µm/px explicitly (mpp=..., --mpp)"
    if diameters.size < MIN_RED_CELLS:
        raise InvalidInputError(
            f"cannot estimate the pixel size: found {diameters.size} isolated red cells "
            f"(need {MIN_RED_CELLS}; single-cell crops and close-ups show too few); {hint}"
        )
    median = float(np.median(diameters))
    spread = float(np.median(np.abs(diameters - median)) / median)
    if spread > MAX_DIAMETER_SPREAD:
        raise InvalidInputError(
            f"cannot estimate the pixel size reliably: the {diameters.size} round objects taken for "
            f"red cells vary too much in size (spread {spread:.2f}, at most {MAX_DIAMETER_SPREAD}; "
            f"probably platelets, debris or cut cells); {hint}"
        )
    return float(red_cell_um / median)
