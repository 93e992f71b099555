"""Cut and resample single-cell crops so every model sees cells at its own µm/px.

A model card fixes ``input_size`` pixels at ``mpp`` µm/px. Crops are taken from a slide level
(or a single-cell image) at whatever scale it has, resampled with an anti-aliased filter to the
card's scale, centred on the cell and padded with glass where they leave the image: white, or
the image's own background colour when the card's ``preprocess`` says ``"pad": "background"``
(see :mod:`hemascope.classify.normalize`).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from hemascope.classify.normalize import (
    background_colour,
    chroma_subsample,
    wants_chroma_subsampling,
    wants_white_balance,
    white_balance,
)
from hemascope.classify.stain import apply_map
from hemascope.errors import InvalidInputError, UnsupportedFormatError
from hemascope.io import Slide
from hemascope.models.card import ModelCard

#: A single-cell image must cover at least this many micrometres on its shorter side.
MIN_CELL_IMAGE_UM = 5.0


def check_rgb_uint8(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Return ``image`` if it is RGB uint8 ``(rows, cols, 3)``, else raise a clear error.

    Raises
    ------
    UnsupportedFormatError
        Grayscale, RGBA or non-uint8 images (convert them explicitly first).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise UnsupportedFormatError(f"{what}: expected uint8 RGB, got dtype {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        raise UnsupportedFormatError(f"{what}: grayscale image, expected RGB")
    if image.ndim != 3 or image.shape[2] != 3:
        kind = "RGBA" if image.ndim == 3 and image.shape[2] == 4 else f"shape {image.shape}"
        raise UnsupportedFormatError(f"{what}: {kind} image, expected RGB (rows, cols, 3)")
    return image


def resize_rgb(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Resize an RGB uint8 image to ``(rows, cols)`` with an anti-aliased bilinear filter."""
    if image.shape[:2] == (rows, cols):
        return image
    pil = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(pil.resize((cols, rows), Image.Resampling.BILINEAR))


def center_square(
    image: np.ndarray,
    size: int,
    fill: int | np.ndarray | tuple[int, int, int] = 255,
    centre: tuple[float, float] | None = None,
) -> np.ndarray:
    """Crop and/or pad (with ``fill``: a grey level or an RGB colour) to ``(size, size, 3)``.

    The square is centred on ``centre`` (``(row, col)`` in ``image``'s pixels; default: the
    image's centre).
    """
    rows, cols = image.shape[:2]
    out = np.empty((size, size, 3), dtype=np.uint8)
    out[...] = np.asarray(fill, dtype=np.uint8)
    if centre is None:
        r0, c0 = (rows - size) // 2, (cols - size) // 2
    else:
        r0, c0 = round(centre[0] - (size - 1) / 2), round(centre[1] - (size - 1) / 2)
    sr0, sc0 = max(r0, 0), max(c0, 0)
    dr0, dc0 = sr0 - r0, sc0 - c0
    h, w = min(rows - sr0, size - dr0), min(cols - sc0, size - dc0)
    if h > 0 and w > 0:
        out[dr0 : dr0 + h, dc0 : dc0 + w] = image[sr0 : sr0 + h, sc0 : sc0 + w]
    return out


def cell_image_to_crop(
    image: np.ndarray,
    mpp: float,
    card: ModelCard,
    size: int | None = None,
    centre: tuple[float, float] | None = None,
) -> np.ndarray:
    """Resample a single-cell image to the card's µm/px and crop it around the cell.

    Parameters
    ----------
    image
        RGB uint8 ``(rows, cols, 3)``.
    mpp
        Micrometres per pixel of ``image``.
    card
        The model card (its ``mpp`` and ``input_size``).
    size
        Output side in pixels (default ``card.input_size``; training uses a larger margin).
    centre
        The cell's ``(row, col)`` in ``image`` (default: the image's centre; see
        :func:`hemascope.classify.framing.frame_picture` for pictures of whole fields).

    Returns
    -------
    numpy.ndarray
        ``(size, size, 3)`` uint8.
    """
    image = check_rgb_uint8(image)
    if mpp is None or not np.isfinite(mpp) or mpp <= 0:
        raise InvalidInputError(f"a positive µm/px is needed, got {mpp}")
    if min(image.shape[:2]) * mpp < MIN_CELL_IMAGE_UM:
        raise InvalidInputError(
            f"image of {image.shape[0]}x{image.shape[1]} px at {mpp:g} µm/px is smaller than a cell"
        )
    size = size or card.input_size
    factor = mpp / card.mpp
    rows = max(1, round(image.shape[0] * factor))
    cols = max(1, round(image.shape[1] * factor))
    fill = background_colour(image) if pads_with_background(card) else 255
    if centre is not None:
        centre = ((centre[0] + 0.5) * rows / image.shape[0] - 0.5, (centre[1] + 0.5) * cols / image.shape[1] - 0.5)
    return center_square(resize_rgb(image, rows, cols), size, fill, centre)


def pads_with_background(card: ModelCard) -> bool:
    """Whether crops for this card are padded with the image's background instead of white."""
    return bool(card.preprocess) and card.preprocess.get("pad") == "background"


def slide_crop(
    slide: Slide, row: float, col: float, card: ModelCard, level: int | None = None
) -> np.ndarray:
    """Cut the crop centred on a level-0 ``(row, col)`` from a slide, at the card's scale.

    Parameters
    ----------
    slide
        The slide (its ``mpp`` must be known).
    row, col
        Cell centre in level-0 pixels.
    card
        The model card.
    level
        Pyramid level to read (default: the coarsest one at least as fine as the card).

    Returns
    -------
    numpy.ndarray
        ``(card.input_size, card.input_size, 3)`` uint8.
    """
    if level is None:
        level = slide.best_level_for_mpp(card.mpp)
    level_mpp = slide.level_mpp(level)
    if level_mpp is None:  # the slide's mpp is unknown
        raise InvalidInputError("the slide's µm/px is unknown; pass mpp= when opening it")
    down = slide.downsamples[level]
    side = max(1, round(card.field_um / level_mpp))
    r0 = round(row / down - side / 2)
    c0 = round(col / down - side / 2)
    region = slide.read_region(level, r0, c0, side, side)
    return resize_rgb(region, card.input_size, card.input_size)


def crops_to_tensor(
    crops: np.ndarray, card: ModelCard, device: torch.device | str = "cpu", stain: torch.Tensor | None = None
) -> torch.Tensor:
    """Normalise a ``(n, size, size, 3)`` uint8 batch into a float ``(n, 3, size, size)`` tensor.

    Applies the card's ``preprocess`` (4:2:0 chroma subsampling, background white balance)
    before the per-channel ``mean``/``std``, exactly as the model's training did. ``stain``: a
    ``(3, 3)`` OD map restaining the crops first (:mod:`hemascope.classify.stain`): the crop as
    the lab would have photographed it in that stain, then prepared like any other.
    """
    x = torch.from_numpy(np.ascontiguousarray(crops)).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if stain is not None:
        x = apply_map(x, stain)
    if wants_chroma_subsampling(card.preprocess):
        x = chroma_subsample(x).clamp_(0, 1)
    if wants_white_balance(card.preprocess):
        x = white_balance(x)
    mean = torch.tensor(card.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(card.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
