"""Stain-aware augmentation of crop batches, in torch (runs on the training device).

Geometry (any rotation, flips, scale jitter) is one ``affine_grid``/``grid_sample`` that also
cuts the model input out of the larger stored crop. Colour follows the stain, not the pixels:
HED jitter (Tellez et al., 2018: scale and shift the haematoxylin/eosin/DAB optical densities),
brightness/contrast/saturation/hue jitter, occasional grayscale, and Gaussian blur. The
deterministic shift functions (:func:`hed_shift`, :func:`gaussian_blur`) also serve the
domain-shift evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hemascope.classify.normalize import wants_white_balance, white_balance
from hemascope.models.card import ModelCard
from hemascope.train import lab_shift
from hemascope.train.restain import restain

# RGB -> HED stain matrix (Ruifrok & Johnston), as in skimage.color.
_RGB_FROM_HED = torch.tensor(
    [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=torch.float32
)
_HED_FROM_RGB = torch.linalg.inv(_RGB_FROM_HED)
_OD_EPS = 1e-6


@dataclass
class AugmentConfig:
    """Strengths of each augmentation (0 disables it).

    Attributes
    ----------
    rotate
        Random rotation by any angle and random horizontal flip.
    scale
        Relative scale jitter: the physical scale is multiplied by ``exp(U(-log(1+s), log(1+s)))``.
    hed
        Sigma of the HED optical-density scale jitter (``bias`` = hed / 5).
    brightness, contrast, saturation, hue
        Colour jitter amplitudes (hue in fractions of a turn).
    gray_p
        Probability of converting a crop to grayscale.
    blur_p, blur_sigma
        Probability of blurring and the maximum Gaussian sigma (pixels).
    stain_mix_p
        Probability of giving a crop the optical-density mean/std of another crop of the batch
        (with domain-balanced sampling, often one from another scanner/stain).
    tint, gradient, gamma
        Lab-to-lab light: white-balance/glass colour, illumination ramp, camera gamma
        (:mod:`hemascope.train.lab_shift`).
    lowres_p, noise_p, noise_sigma
        Coarser optics/sensor (down- and up-sampling) and Gaussian sensor noise.
    tight_p
        Probability of framing the cell in a tight box padded with the crop's glass colour.
    restain_p
        Probability of giving a crop a random stain between the reference labs' stains
        (:mod:`hemascope.train.restain`; needs each crop's own stain, ``augment_batch(stain=...)``).
    """

    rotate: bool = True
    scale: float = 0.15
    hed: float = 0.08
    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.25
    hue: float = 0.04
    gray_p: float = 0.1
    blur_p: float = 0.2
    blur_sigma: float = 1.2
    stain_mix_p: float = 0.0
    tint: float = 0.0
    gradient: float = 0.0
    gamma: float = 0.0
    lowres_p: float = 0.0
    noise_p: float = 0.0
    noise_sigma: float = 0.04
    tight_p: float = 0.0
    restain_p: float = 0.0

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation (centre crop only)."""
        return cls(False, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    @classmethod
    def lab(cls) -> AugmentConfig:
        """Strong augmentation of everything that differs between labs (the bundled ``wbc`` recipe).

        Stain (HED, cross-crop stain statistics, hue, saturation), light (white balance incl.
        grey/yellow glass, illumination ramps, gamma), optics (blur, low resolution), sensor noise,
        scale ±25 %, framing from tight boxes to full fields, and restaining into another lab's
        stain where each crop's stain is known.
        """
        return cls(
            rotate=True,
            scale=0.25,
            hed=0.12,
            brightness=0.2,
            contrast=0.25,
            saturation=0.4,
            hue=0.06,
            gray_p=0.05,
            blur_p=0.4,
            blur_sigma=1.5,
            stain_mix_p=0.5,
            tint=0.25,
            gradient=0.3,
            gamma=0.3,
            lowres_p=0.25,
            noise_p=0.3,
            tight_p=0.35,
            restain_p=0.5,
        )


def _uniform(
    n: int, lo: float, hi: float, gen: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    where = gen.device if gen is not None else "cpu"
    return torch.rand(n, generator=gen, device=where).to(device) * (hi - lo) + lo


def geometric(
    x: torch.Tensor, out_size: int, cfg: AugmentConfig, gen: torch.Generator | None = None
) -> torch.Tensor:
    """Rotate/flip/scale and cut the central ``out_size`` pixels of an NCHW float batch."""
    n, _, size, _ = x.shape
    dev = x.device
    frac = out_size / size
    angle = _uniform(n, 0, 2 * math.pi, gen, dev) if cfg.rotate else torch.zeros(n, device=dev)
    lim = math.log1p(cfg.scale) if cfg.scale > 0 else 0.0
    scale = torch.exp(_uniform(n, -lim, lim, gen, dev)) if lim else torch.ones(n, device=dev)
    flip = (
        torch.where(_uniform(n, 0, 1, gen, dev) < 0.5, -1.0, 1.0)
        if cfg.rotate
        else torch.ones(n, device=dev)
    )
    s = frac * scale
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = s * torch.cos(angle) * flip
    theta[:, 0, 1] = -s * torch.sin(angle)
    theta[:, 1, 0] = s * torch.sin(angle) * flip
    theta[:, 1, 1] = s * torch.cos(angle)
    grid = F.affine_grid(theta, [n, 3, out_size, out_size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def center_crop(x: torch.Tensor, out_size: int) -> torch.Tensor:
    """The central ``out_size`` × ``out_size`` pixels of an NCHW batch."""
    size = x.shape[-1]
    o = (size - out_size) // 2
    return x[..., o : o + out_size, o : o + out_size]


def hed_shift(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Scale (``1 + alpha``) and shift (``beta``) the HED optical densities of RGB in [0, 1].

    ``alpha`` and ``beta`` are ``(n, 3)`` (or broadcastable) per-stain amounts.
    """
    dev = x.device
    od = -torch.log(x.clamp_min(_OD_EPS))
    hed = torch.einsum("nchw,cd->ndhw", od, _HED_FROM_RGB.to(dev))
    hed = hed * (1 + alpha.view(-1, 3, 1, 1)) + beta.view(-1, 3, 1, 1)
    od2 = torch.einsum("ndhw,dc->nchw", hed, _RGB_FROM_HED.to(dev))
    return torch.exp(-od2).clamp(0, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _hue_rotate(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate hue by rotating chroma in YIQ space (linear, differentiable, fast)."""
    to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device
    )
    yiq = torch.einsum("nchw,dc->ndhw", x, to_yiq)
    a = turns.view(-1, 1, 1) * 2 * math.pi
    c, s = torch.cos(a), torch.sin(a)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], c * i - s * q, s * i + c * q], 1)
    return torch.einsum("ndhw,cd->nchw", yiq, torch.linalg.inv(to_yiq)).clamp(0, 1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of an NCHW batch with one ``sigma`` (pixels)."""
    if sigma <= 0:
        return x
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def stain_mix(x: torch.Tensor, p: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """With probability ``p`` per crop, match its per-channel OD mean/std to another crop's."""
    n = x.shape[0]
    where = gen.device if gen is not None else "cpu"
    pick = torch.rand(n, generator=gen, device=where) < p
    if n < 2 or not bool(pick.any()):
        return x
    other = torch.randperm(n, generator=gen, device=where).to(x.device)
    od = -torch.log(x.clamp_min(1 / 255))
    mean = od.mean(dim=(2, 3), keepdim=True)
    std = od.std(dim=(2, 3), keepdim=True) + 1e-4
    mixed = (od - mean) / std * std[other] + mean[other]
    out = torch.exp(-mixed.clamp_min(0)).clamp(0, 1)
    return torch.where(pick.to(x.device).view(n, 1, 1, 1), out, x)


def color(
    x: torch.Tensor,
    cfg: AugmentConfig,
    gen: torch.Generator | None = None,
    stain: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply the random stain/colour/blur augmentations to RGB in [0, 1] (NCHW).

    ``stain``: each crop's stain as an index into :data:`hemascope.classify.stain.STAIN_NAMES`
    (restaining is skipped without it).
    """
    n, dev = x.shape[0], x.device
    if cfg.restain_p > 0 and stain is not None:
        x = restain(x, stain, cfg.restain_p, gen)
    if cfg.stain_mix_p > 0:
        x = stain_mix(x, cfg.stain_mix_p, gen)
    if cfg.hed > 0:
        alpha = _uniform(n * 3, -cfg.hed, cfg.hed, gen, dev).view(n, 3)
        beta = _uniform(n * 3, -cfg.hed / 5, cfg.hed / 5, gen, dev).view(n, 3)
        x = hed_shift(x, alpha, beta)
    if cfg.brightness > 0:
        x = x * (1 + _uniform(n, -cfg.brightness, cfg.brightness, gen, dev)).view(n, 1, 1, 1)
    if cfg.contrast > 0:
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - m) * (1 + _uniform(n, -cfg.contrast, cfg.contrast, gen, dev)).view(n, 1, 1, 1) + m
    if cfg.saturation > 0:
        g = _gray(x)
        x = (x - g) * (1 + _uniform(n, -cfg.saturation, cfg.saturation, gen, dev)).view(
            n, 1, 1, 1
        ) + g
    if cfg.hue > 0:
        x = _hue_rotate(x.clamp(0, 1), _uniform(n, -cfg.hue, cfg.hue, gen, dev))
    if cfg.gray_p > 0:
        pick = (_uniform(n, 0, 1, gen, dev) < cfg.gray_p).view(n, 1, 1, 1)
        x = torch.where(pick, _gray(x).expand_as(x), x)
    if cfg.blur_p > 0 and cfg.blur_sigma > 0:
        pick = _uniform(n, 0, 1, gen, dev) < cfg.blur_p
        if bool(pick.any()):
            sigma = float(_uniform(1, 0.3, cfg.blur_sigma, gen, dev))
            x = x.clone()
            x[pick] = gaussian_blur(x[pick], sigma)
    x = lab_shift.tint(x.clamp(0, 1), cfg.tint, gen)
    x = lab_shift.illumination_gradient(x, cfg.gradient, gen)
    x = lab_shift.gamma(x, cfg.gamma, gen)
    x = lab_shift.low_resolution(x, cfg.lowres_p, gen=gen)
    x = lab_shift.sensor_noise(x, cfg.noise_p, cfg.noise_sigma, gen)
    x = lab_shift.tight_framing(x, cfg.tight_p, gen=gen)
    return x.clamp(0, 1)


def augment_batch(
    crops: torch.Tensor,
    out_size: int,
    mean: list[float],
    std: list[float],
    cfg: AugmentConfig | None = None,
    gen: torch.Generator | None = None,
    *,
    balance_white: bool = False,
    stain: torch.Tensor | None = None,
) -> torch.Tensor:
    """Turn a uint8 NHWC crop batch into an augmented, normalised NCHW float batch.

    Parameters
    ----------
    crops
        ``(n, S, S, 3)`` uint8 tensor (stored crops, ``S >= out_size``).
    out_size
        Model input size.
    mean, std
        The card's normalisation.
    cfg
        Augmentation strengths (``None`` → defaults; :meth:`AugmentConfig.off` for evaluation).
    gen
        Random generator for reproducibility.
    balance_white
        Divide each crop by its own background colour after augmentation, exactly as inference
        does for cards with ``preprocess = {"white_balance": "background"}``.
    stain
        Each crop's stain (index into :data:`hemascope.classify.stain.STAIN_NAMES`), for
        ``cfg.restain_p``.
    """
    cfg = cfg or AugmentConfig()
    x = crops.permute(0, 3, 1, 2).float().div(255.0)
    if cfg.rotate or cfg.scale > 0:
        x = geometric(x, out_size, cfg, gen)
    else:
        x = center_crop(x, out_size)
    x = color(x, cfg, gen, stain)
    if balance_white:
        x = white_balance(x)
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def plain_batches(bank: torch.Tensor, card: ModelCard, device: torch.device, batch: int) -> Iterator[torch.Tensor]:
    """The crops of ``bank`` as the network sees them at inference, ``batch`` at a time: resized to
    ``card.input_size``, white-balanced when the card asks for it and normalised, never augmented."""
    off = AugmentConfig.off()
    balance = wants_white_balance(card.preprocess)
    for start in range(0, len(bank), batch):
        yield augment_batch(bank[start:start + batch].to(device), card.input_size, card.mean, card.std, off,
                            balance_white=balance)
