"""Stains as optical densities, and a second reading of cells whose stain carried a shortcut.

A stain is described by two optical densities (natural log, relative to the glass): the median
of the white cells' nuclei and of the red cells (:data:`STAINS`, the reference stains of the
bundled models' training sources). :func:`stain_map` is the 3 × 3 linear OD map taking one such
pair onto another (the third axis, their cross product, onto the target's); :func:`apply_map`
applies it to crops, keeping each crop's glass. Training restains crops with them
(:mod:`hemascope.train.restain`).

**Why a second reading.** The bundled ``wbc`` model learned its lymphoblasts mostly from one lab
whose red cells are blue-grey (the Taleqani B-ALL fields) and every other class from CellaVision
labs. Restaining in training weakened, but did not remove, the shortcut "this stain → lymphoid /
blast": another lab's normal cells in that stain were N/L/M/E 0.59 and up to 4 % "blast"
(BENCHMARKS.md, "A stain that carried a shortcut"). A model's card can therefore name such
stains (``preprocess["stain_reading"] = {"stains": [...], "also_as": "cellavision"}``): when the
stain of a batch of cells (:func:`estimate_stain`, measured on the model's own crops) lies nearest
one of them, every cell is also read restained into the ``also_as`` stain by the reference map
between the two (the map training restained with), and the two readings' probabilities are
averaged. Blasts of the lab itself keep their calls (both readings see them); normal cells lose
the stain's pull.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hemascope.classify.normalize import background_rgb
from hemascope.errors import ModelError
from hemascope.models.card import ModelCard

# (nucleus OD, red-cell OD), R/G/B, measured: CellaVision MGG on the wbc_seg masks; the Taleqani
# fields' find_cells nuclei and the stained pixels > 3 µm from every cell (40 seeded fields,
# 0.444 µm/px). benchmarks/bench_segment_recoloured.py's ``bluish`` copies use the same pairs.
STAINS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "cellavision": ((0.850, 1.506, 0.356), (0.233, 0.454, 0.260)),
    "taleqani": ((0.479, 0.636, 0.012), (0.304, 0.253, 0.088)),
}
STAIN_NAMES = tuple(STAINS)
#: What each reference stain looks like, for messages.
STAIN_LOOKS = {
    "cellavision": "the CellaVision labs' (pink red cells)",
    "taleqani": "the Taleqani B-ALL fields' (blue-grey red cells)",
}

#: Nuclei are sought within this radius (µm) of a crop's centre, as its densest pixels ...
NUCLEUS_RADIUS_UM = 5.0
#: ... this share of them.
NUCLEUS_SHARE = 0.2
#: Red cells: stained pixels at least this far (µm) from the centre ...
RED_CELL_MIN_UM = 8.0
#: ... denser than this (summed OD) and lighter than this share of the crop's nucleus.
RED_CELL_MIN_OD, RED_CELL_MAX_NUCLEUS = 0.25, 0.6
#: Fewer red-cell pixels than this in a batch: the stain is judged by its nuclei alone.
MIN_RED_CELL_PIXELS = 50


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


def glass_density(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Optical densities of RGB in [0, 1] (NCHW) relative to each crop's own glass colour
    (:func:`hemascope.classify.normalize.background_rgb`), and that colour (``(n, 3, 1, 1)``)."""
    glass = background_rgb(x).view(-1, 3, 1, 1)
    return -torch.log((x / glass).clamp(1 / 255, 1.0)), glass


def apply_map(x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Restain RGB in [0, 1] (NCHW) by per-crop OD ``maps`` (``(n, 3, 3)``, or one ``(3, 3)``).

    Optical densities are taken relative to each crop's own glass colour (:func:`glass_density`),
    which stays as it was: the light is not the stain.
    """
    if maps.ndim == 2:
        maps = maps.expand(x.shape[0], 3, 3)
    od, glass = glass_density(x)
    od = torch.einsum("nij,njhw->nihw", maps.to(x), od).clamp_min(0)
    return (glass * torch.exp(-od)).clamp(0, 1)


@dataclass(frozen=True)
class StainReading:
    """The stain of a batch of cells and how it was read.

    Attributes
    ----------
    nearest
        The reference stain (:data:`STAINS`) the batch's lies nearest.
    angles
        Its angle (degrees, nucleus + red cells) to each reference stain.
    also_read_as
        The stain the cells were also read in (their probabilities averaged), or ``None``.
    n_cells
        Crops the stain was measured on.
    """

    nearest: str
    angles: dict[str, float]
    also_read_as: str | None
    n_cells: int

    @property
    def reason(self) -> str:
        """One line for the CLI and reports."""
        line = f"stain nearest {STAIN_LOOKS.get(self.nearest, self.nearest)}"
        if self.also_read_as:
            line += (f", where the model learnt its blasts: cells also read restained like "
                     f"{STAIN_LOOKS.get(self.also_read_as, self.also_read_as)}, the two readings averaged")
        return line


def estimate_stain(crops: np.ndarray, mpp: float) -> tuple[np.ndarray, np.ndarray | None]:
    """The median nucleus and red-cell ODs of a batch of crops centred on their white cells.

    Parameters
    ----------
    crops
        ``(n, size, size, 3)`` uint8 at ``mpp`` µm/px, each centred on a white cell.
    mpp
        Their µm/px.

    Returns
    -------
    (nucleus, red_cell)
        ``(3,)`` ODs relative to each crop's glass; ``red_cell`` is ``None`` when fewer than
        :data:`MIN_RED_CELL_PIXELS` red-cell pixels were seen (tight boxes, close-ups).
    """
    od, _ = glass_density(torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0))
    h, w = od.shape[-2:]
    rows, cols = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    radius = (rows**2 + cols**2).sqrt() * mpp
    near = radius <= max(NUCLEUS_RADIUS_UM, float(radius.min()))  # (coarse cards: the central pixels)
    far = radius >= RED_CELL_MIN_UM
    density = od.sum(1)
    centre = density[:, near]  # (n, pixels near the centre)
    top = centre.topk(max(1, int(NUCLEUS_SHARE * centre.shape[1])), dim=1)
    nuclei = od[:, :, near].gather(2, top.indices.unsqueeze(1).expand(-1, 3, -1))  # (n, 3, k)
    ring = density[:, far]
    lighter = RED_CELL_MAX_NUCLEUS * top.values.mean(1, keepdim=True)
    pick = (ring > RED_CELL_MIN_OD) & (ring < lighter)
    red = od[:, :, far].permute(0, 2, 1)[pick]  # (pixels, 3)
    nucleus = nuclei.permute(0, 2, 1).reshape(-1, 3).median(0).values.numpy()
    return nucleus, (red.median(0).values.numpy() if len(red) >= MIN_RED_CELL_PIXELS else None)


def _angle(a: np.ndarray, b: tuple[float, float, float]) -> float:
    b_ = np.asarray(b, float)
    cos = float(a @ b_) / max(float(np.linalg.norm(a) * np.linalg.norm(b_)), 1e-12)
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def read_stain(crops: np.ndarray, card: ModelCard) -> tuple[StainReading, torch.Tensor | None]:
    """Judge a batch's stain and, where the card asks for it, the map of its second reading.

    Parameters
    ----------
    crops
        ``(n, size, size, 3)`` uint8 crops at the card's scale (a sample of the batch).
    card
        The model's card; ``preprocess["stain_reading"]`` names the stains read twice.

    Returns
    -------
    (reading, map)
        The :class:`StainReading` and the ``(3, 3)`` OD map of the second reading (``None``
        when the cells are read once).
    """
    nucleus, red_cell = estimate_stain(crops, card.mpp)
    angles = {
        name: _angle(nucleus, ref_nucleus) + (_angle(red_cell, ref_red) if red_cell is not None else 0.0)
        for name, (ref_nucleus, ref_red) in STAINS.items()
    }
    nearest = min(angles, key=angles.__getitem__)
    rule = (card.preprocess or {}).get("stain_reading") or {}
    unknown = sorted({*rule.get("stains", ()), rule.get("also_as", "cellavision")} - set(STAINS))
    if unknown:
        raise ModelError(f"the card of {card.name!r} reads unknown stains {unknown}; known: {list(STAINS)}")
    also = rule.get("also_as") if nearest in rule.get("stains", ()) else None
    reading = StainReading(nearest, {k: round(v, 1) for k, v in angles.items()}, also, len(crops))
    if also is None:
        return reading, None
    return reading, stain_map(reference(nearest), reference(also))
