"""Restaining: give a crop another lab's stain, so that the stain stops being a class cue.

A stain is described by two optical densities (natural log, relative to the glass): the median
of the white cells' nuclei and of the red cells. :func:`stain_map` is the 3 × 3 linear OD map
taking one such pair onto another (the third axis, their cross product, onto the target's);
:func:`restain` applies it per crop, towards a random stain between the reference stains
(:data:`STAINS`), each with its own jitter.

Why: the bundled cell model learned blasts mostly from one lab whose red cells are blue-grey
(the Taleqani B-ALL fields) and normal cells from CellaVision labs, so it read "this stain" as
"lymphoid / blast" (BENCHMARKS.md, "Blue-grey red cells"). Restaining the CellaVision cells into
that stain and the Taleqani cells into the CellaVision one breaks the link. (Unlike
:mod:`hemascope.train.stain_transfer`, whole-picture colour statistics for checks, this moves the
nucleus and the red-cell colours each where the other lab has them.)
"""

from __future__ import annotations

import torch

from hemascope.classify.normalize import background_rgb

# (nucleus OD, red-cell OD), R/G/B, measured: CellaVision MGG on the wbc_seg masks; the Taleqani
# fields' find_cells nuclei and the stained pixels > 3 µm from every cell (40 seeded fields,
# 0.444 µm/px). benchmarks/bench_segment_recoloured.py's ``bluish`` copies use the same pairs.
STAINS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "cellavision": ((0.850, 1.506, 0.356), (0.233, 0.454, 0.260)),
    "taleqani": ((0.479, 0.636, 0.012), (0.304, 0.253, 0.088)),
}
STAIN_NAMES = tuple(STAINS)
# the stain of each training source (hemascope.train.class_maps' domain names)
DOMAIN_STAIN = {"pbc": "cellavision", "deepapl": "cellavision", "taleqani": "taleqani"}


def _basis(nucleus: torch.Tensor, red_cell: torch.Tensor) -> torch.Tensor:
    third = torch.linalg.cross(nucleus, red_cell, dim=-1)
    third = 0.3 * third / third.norm(dim=-1, keepdim=True)
    return torch.stack([nucleus, red_cell, third], dim=-1)


def stain_map(
    source: tuple[torch.Tensor, torch.Tensor], target: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """The OD maps (``(..., 3, 3)``) taking ``source``'s (nucleus, red cell) ODs onto ``target``'s.

    Each of the four tensors is ``(..., 3)``; ``od_target = map @ od_source``.
    """
    return _basis(*target) @ torch.linalg.inv(_basis(*source))


def reference(name: str, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The (nucleus, red cell) ODs of a reference stain in :data:`STAINS`."""
    nucleus, red_cell = STAINS[name]
    return torch.tensor(nucleus, dtype=dtype), torch.tensor(red_cell, dtype=dtype)


def apply_map(x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Restain RGB in [0, 1] (NCHW) by per-crop OD ``maps`` (``(n, 3, 3)``).

    Optical densities are taken relative to each crop's own glass colour
    (:func:`hemascope.classify.normalize.background_rgb`), which stays as it was: the light is
    not the stain.
    """
    glass = background_rgb(x).view(-1, 3, 1, 1)
    od = -torch.log((x / glass).clamp(1 / 255, 1.0))
    od = torch.einsum("nij,njhw->nihw", maps.to(x), od).clamp_min(0)
    return (glass * torch.exp(-od)).clamp(0, 1)


def restain(
    x: torch.Tensor,
    source: torch.Tensor,
    p: float,
    gen: torch.Generator | None = None,
    jitter: float = 0.15,
) -> torch.Tensor:
    """With probability ``p`` per crop, give it a random stain between the reference stains.

    ``source`` holds each crop's stain as an index into :data:`STAIN_NAMES`. The target nucleus
    and red-cell ODs are each a random mix of the reference stains' (mixing weights drawn apart,
    so a nucleus of one lab can sit among red cells of another), every channel scaled by
    ``1 ± jitter``.
    """
    n, dev = x.shape[0], x.device
    where = gen.device if gen is not None else "cpu"
    if p <= 0 or n == 0:
        return x
    pick = (torch.rand(n, generator=gen, device=where) < p).to(dev)
    if not bool(pick.any()):
        return x
    refs = [reference(name) for name in STAIN_NAMES]
    nuclei = torch.stack([r[0] for r in refs]).to(dev)
    red_cells = torch.stack([r[1] for r in refs]).to(dev)
    k = len(refs)

    def mix() -> torch.Tensor:
        w = torch.rand(n, k, generator=gen, device=where).to(dev) ** 2
        return w / w.sum(1, keepdim=True)

    def scaled(od: torch.Tensor) -> torch.Tensor:
        s = 1 + (torch.rand(n, 3, generator=gen, device=where).to(dev) * 2 - 1) * jitter
        return od * s

    target = (scaled(mix() @ nuclei), scaled(mix() @ red_cells))
    source = source.to(dev).long()
    maps = stain_map((nuclei[source], red_cells[source]), target)
    out = x.clone()
    out[pick] = apply_map(x[pick], maps[pick])  # only the picked crops: half the work in training
    return out
