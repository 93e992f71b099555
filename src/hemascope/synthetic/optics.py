"""A field as photographed through a microscope: light falling off towards the edge of the field
of view (vignetting) and the dark surround of a round field stop (a phone held to the eyepiece)."""

from __future__ import annotations

import numpy as np


def photographed(
    image: np.ndarray, *, fall_off: float = 0.35, field_stop: float | None = 0.47, surround: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` as a photograph through a microscope, and where it shows the specimen.

    Parameters
    ----------
    image
        ``(rows, cols, 3)`` uint8 RGB field.
    fall_off
        Fraction of the light lost at the edge of the field of view (quadratic in the radius).
    field_stop
        Radius of the round field of view as a fraction of the shorter side (``None``: no stop,
        the fall-off reaches its full value at 0.7 of the shorter side and the corners).
    surround
        Grey level outside the field stop.

    Returns
    -------
    image, in_view
        The photographed uint8 RGB field and a ``(rows, cols)`` bool mask of the field of view.
    """
    h, w = image.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    rho = np.hypot(yy - h / 2, xx - w / 2) / ((field_stop or 0.7) * min(h, w))
    out = image[..., :3] * (1.0 - fall_off * np.clip(rho, 0.0, 1.0) ** 2)[..., None]
    in_view = rho <= 1.0 if field_stop else np.ones((h, w), dtype=bool)
    out[~in_view] = surround
    return np.clip(np.round(out), 0, 255).astype(np.uint8), in_view


__all__ = ["photographed"]
