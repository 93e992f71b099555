"""Restaining: give a crop another lab's stain, so that the stain stops being a class cue.

A stain is described by two optical densities relative to the glass, of the nuclei and of the
red cells (:mod:`hemascope.classify.stain`: the reference stains and the OD maps between them);
:func:`restain` maps each crop towards a random stain between the reference stains, each with its
own jitter.

Why: the bundled cell model learned blasts mostly from one lab whose red cells are blue-grey
(the Taleqani B-ALL fields) and normal cells from CellaVision labs, so it read "this stain" as
"lymphoid / blast" (BENCHMARKS.md, "Blue-grey red cells"). Restaining the CellaVision cells into
that stain and the Taleqani cells into the CellaVision one breaks the link. (Unlike
:mod:`hemascope.train.stain_transfer`, whole-picture colour statistics for checks, this moves the
nucleus and the red-cell colours each where the other lab has them.)
"""

from __future__ import annotations

import torch

from hemascope.classify.stain import STAIN_NAMES, apply_map, reference, stain_map

# the stain of each training source (hemascope.train.class_maps' domain names)
DOMAIN_STAIN = {"pbc": "cellavision", "deepapl": "cellavision", "taleqani": "taleqani"}


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
