"""Input normalisation that removes what a cell model must not read: the lab's white balance.

Two labs photograph the same cell on glass of different colour: CellaVision's light pink-grey,
a phone's yellow-tinted field, a camera's grey. The model should see the cell, not the glass. So
every crop is divided, channel by channel, by a robust estimate of its own background colour
(the mean of its brightest pixels), which maps the glass to :data:`TARGET_WHITE` on every
microscope. Padding (where a crop runs out of image) is filled with the *image's* background
colour instead of pure white, so a tight box and a centred crop of the same cell look alike
after normalisation.

The same torch function (:func:`white_balance`) runs in training (after augmentation) and at
inference (in :func:`hemascope.classify.crops.crops_to_tensor`) when the model card's
``preprocess`` asks for it (``{"white_balance": "background"}``); cards without it are unchanged.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

#: Fraction of the brightest pixels whose mean colour is taken as the background (glass).
BRIGHT_FRACTION = 0.1
#: The colour the background is mapped to (slightly below 1 so nothing saturates).
TARGET_WHITE = 0.94
#: Background channels are clamped to at least this (a crop with no glass must not explode).
MIN_BACKGROUND = 0.25
#: Pixels sampled per image for :func:`background_colour` (large fields are subsampled).
MAX_PIXELS = 65536


def wants_white_balance(preprocess: dict | None) -> bool:
    """Whether a card's ``preprocess`` asks for background white balance."""
    return bool(preprocess) and preprocess.get("white_balance") == "background"


def background_rgb(x: torch.Tensor, fraction: float = BRIGHT_FRACTION) -> torch.Tensor:
    """Background colour ``(n, 3)`` of an NCHW batch of RGB in [0, 1]: mean of its brightest pixels.

    Parameters
    ----------
    x
        ``(n, 3, h, w)`` float RGB in [0, 1].
    fraction
        Share of the brightest pixels (by channel mean) averaged.
    """
    n = x.shape[0]
    flat = x.reshape(n, 3, -1).float()
    lum = flat.mean(1)
    k = max(1, int(round(lum.shape[1] * fraction)))
    idx = lum.topk(k, dim=1).indices
    bright = torch.gather(flat, 2, idx.unsqueeze(1).expand(n, 3, k))
    return bright.mean(2).clamp_min(MIN_BACKGROUND)


def white_balance(x: torch.Tensor) -> torch.Tensor:
    """Divide each crop by its own background colour so the glass becomes :data:`TARGET_WHITE`.

    Parameters
    ----------
    x
        ``(n, 3, h, w)`` float RGB in [0, 1].

    Returns
    -------
    torch.Tensor
        Same shape, clamped to [0, 1].
    """
    if x.shape[0] == 0:
        return x
    bg = background_rgb(x).to(x.dtype)
    return (x * (TARGET_WHITE / bg).view(-1, 3, 1, 1)).clamp(0, 1)


def background_colour(image: np.ndarray, fraction: float = BRIGHT_FRACTION) -> np.ndarray:
    """Background (glass) colour of an RGB uint8 image: the mean of its brightest pixels.

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8.
    fraction
        Share of the brightest pixels averaged.

    Returns
    -------
    numpy.ndarray
        ``(3,)`` uint8, used to pad crops that leave the image.
    """
    pixels = image.reshape(-1, 3)
    if len(pixels) > MAX_PIXELS:
        pixels = pixels[:: int(np.ceil(len(pixels) / MAX_PIXELS))]
    lum = pixels.astype(np.float32).mean(1)
    k = max(1, int(round(len(lum) * fraction)))
    bright = pixels[np.argpartition(lum, len(lum) - k)[-k:]]
    return np.round(bright.mean(0)).astype(np.uint8)


def jpeg_quality(preprocess: dict | None) -> int | None:
    """The JPEG quality a card's crops are round-tripped through (``None``: no round trip)."""
    q = (preprocess or {}).get("jpeg_quality")
    return int(q) if q else None


def jpeg_roundtrip(crops: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode each ``(n, h, w, 3)`` uint8 crop as JPEG (4:2:0 chroma, ``quality``).

    The bundled multi-source ``wbc`` was trained on JPEG-packed crops: its inputs are passed
    through the same compression so that a lossless TIFF, a phone JPEG and a CellaVision JPEG all
    reach the network with the same chroma resolution (measured: without it, held-out PBC accuracy
    drops by about 2 points).
    """
    out = np.empty_like(crops)
    for i, crop in enumerate(crops):
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(crop)).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as im:
            out[i] = np.asarray(im.convert("RGB"))
    return out
