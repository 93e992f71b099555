"""Recolour cells to another laboratory's stain (Reinhard et al., 2001: LAB mean/std matching).

Used to test that a classifier does not read the scanner or stain as a class: cells of one
source are recoloured to the colour statistics of the other and the predictions compared.
"""

from __future__ import annotations

import numpy as np
from skimage import color

from hemascope.classify.crops import check_rgb_uint8


def lab_statistics(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation in CIE-LAB of a stack ``(n, rows, cols, 3)`` uint8."""
    images = np.asarray(images)
    lab = color.rgb2lab(images.reshape(-1, images.shape[-2], 3)).reshape(-1, 3)
    return lab.mean(0), lab.std(0)


def transfer_stain(
    images: np.ndarray, target_mean: np.ndarray, target_std: np.ndarray
) -> np.ndarray:
    """Match each image's LAB mean/std to the target statistics.

    Parameters
    ----------
    images
        ``(n, rows, cols, 3)`` uint8 (or one ``(rows, cols, 3)`` image).
    target_mean, target_std
        From :func:`lab_statistics` of the target stain.

    Returns
    -------
    numpy.ndarray
        Recoloured images, same shape, uint8.
    """
    single = np.asarray(images).ndim == 3
    stack = np.asarray(images)[None] if single else np.asarray(images)
    out = np.empty_like(stack)
    for i, img in enumerate(stack):
        lab = color.rgb2lab(check_rgb_uint8(img))
        mean, std = lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0) + 1e-6
        lab = (lab - mean) / std * np.asarray(target_std) + np.asarray(target_mean)
        out[i] = np.clip(color.lab2rgb(lab) * 255 + 0.5, 0, 255).astype(np.uint8)
    return out[0] if single else out
