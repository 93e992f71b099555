"""Augmentations of what differs between labs beyond the stain: light, optics, camera, framing.

Each function takes an NCHW float batch of RGB in [0, 1] and a strength, draws one random
setting per crop from ``gen`` and returns a batch of the same shape:

* :func:`tint` — white balance / glass colour (non-white backgrounds: grey, yellow, blue).
* :func:`illumination_gradient` — uneven illumination (a linear ramp across the field).
* :func:`gamma` — camera response curve.
* :func:`low_resolution` — a coarser sensor or a phone through the eyepiece (down- then up-sample).
* :func:`sensor_noise` — additive Gaussian noise.
* :func:`tight_framing` — a tight bounding box around the cell, padded with the glass colour,
  as single-cell crops from other tools are (the padding is what inference pads with, see
  :mod:`hemascope.classify.normalize`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hemascope.classify.normalize import background_rgb


def _where(gen: torch.Generator | None) -> torch.device | str:
    return gen.device if gen is not None else "cpu"


def _u(
    n: int, lo: float, hi: float, gen: torch.Generator | None, dev: torch.device
) -> torch.Tensor:
    return (torch.rand(n, generator=gen, device=_where(gen)) * (hi - lo) + lo).to(dev)


def _picked(n: int, p: float, gen: torch.Generator | None, dev: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=gen, device=_where(gen)) < p).to(dev)


def tint(x: torch.Tensor, amount: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Multiply each channel by ``exp(U(-amount, amount))`` and the whole crop by a dimming factor."""
    if amount <= 0:
        return x
    n, dev = x.shape[0], x.device
    gains = torch.exp(_u(n * 3, -amount, amount, gen, dev)).view(n, 3, 1, 1)
    dim = _u(n, 1 - amount, 1.0, gen, dev).view(n, 1, 1, 1)
    return (x * gains * dim).clamp(0, 1)


def illumination_gradient(
    x: torch.Tensor, amount: float, gen: torch.Generator | None = None
) -> torch.Tensor:
    """Multiply by ``1 + a * ramp`` with ``a ~ U(0, amount)`` along a random direction."""
    if amount <= 0:
        return x
    n, _, h, w = x.shape
    dev = x.device
    angle = _u(n, 0, 2 * math.pi, gen, dev).view(n, 1, 1)
    a = _u(n, 0, amount, gen, dev).view(n, 1, 1)
    rr = torch.linspace(-1, 1, h, device=dev).view(1, h, 1)
    cc = torch.linspace(-1, 1, w, device=dev).view(1, 1, w)
    ramp = 1 + a * (torch.cos(angle) * rr + torch.sin(angle) * cc)
    return (x * ramp.unsqueeze(1)).clamp(0, 1)


def gamma(x: torch.Tensor, amount: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Raise to the power ``exp(U(-amount, amount))``."""
    if amount <= 0:
        return x
    n, dev = x.shape[0], x.device
    g = torch.exp(_u(n, -amount, amount, gen, dev)).view(n, 1, 1, 1)
    return x.clamp_min(1e-4).pow(g)


def low_resolution(
    x: torch.Tensor, p: float, max_factor: float = 2.5, gen: torch.Generator | None = None
) -> torch.Tensor:
    """With probability ``p`` per batch share, down-sample by ``U(1.3, max_factor)`` and back."""
    n, _, h, w = x.shape
    pick = _picked(n, p, gen, x.device)
    if p <= 0 or not bool(pick.any()):
        return x
    factor = float(_u(1, 1.3, max_factor, gen, x.device))
    small = F.interpolate(
        x[pick], size=(max(4, round(h / factor)), max(4, round(w / factor))), mode="area"
    )
    out = x.clone()
    out[pick] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return out


def sensor_noise(
    x: torch.Tensor, p: float, sigma: float = 0.04, gen: torch.Generator | None = None
) -> torch.Tensor:
    """With probability ``p`` per crop, add Gaussian noise of standard deviation ``U(0, sigma)``."""
    if p <= 0 or sigma <= 0:
        return x
    n, dev = x.shape[0], x.device
    s = _u(n, 0, sigma, gen, dev) * _picked(n, p, gen, dev)
    noise = torch.randn(x.shape, generator=gen, device=_where(gen)).to(dev)
    return (x + noise * s.view(n, 1, 1, 1)).clamp(0, 1)


def tight_framing(
    x: torch.Tensor,
    p: float,
    min_half: float = 0.45,
    gen: torch.Generator | None = None,
) -> torch.Tensor:
    """With probability ``p``, keep a centred box and fill the rest with the crop's glass colour.

    The kept box has a half-side of ``U(min_half, 1)`` times the crop's (shifted by up to 8 %),
    so crops range from a tight box around the cell to the full field.
    """
    n, _, h, w = x.shape
    dev = x.device
    pick = _picked(n, p, gen, dev)
    if p <= 0 or not bool(pick.any()):
        return x
    half = _u(n, min_half, 1.0, gen, dev).view(n, 1, 1)
    dr = _u(n, -0.08, 0.08, gen, dev).view(n, 1, 1)
    dc = _u(n, -0.08, 0.08, gen, dev).view(n, 1, 1)
    rr = torch.linspace(-1, 1, h, device=dev).view(1, h, 1)
    cc = torch.linspace(-1, 1, w, device=dev).view(1, 1, w)
    inside = ((rr - dr).abs() <= half) & ((cc - dc).abs() <= half)
    keep = inside | ~pick.view(n, 1, 1)
    bg = background_rgb(x).view(n, 3, 1, 1).to(x.dtype)
    return torch.where(keep.unsqueeze(1), x, bg)
