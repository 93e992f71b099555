"""Romanowsky stain colours as optical densities (Beer–Lambert), and the stain shift applied to them.

Every structure of a smear (red-cell haemoglobin, chromatin, basophilic cytoplasm, eosinophil
granules, ...) absorbs light; its colour is stored as an optical-density (OD) vector
``-ln(rgb / 255)`` of one unit of thickness. Overlapping structures add their ODs, which is why
overlapping red cells look darker, as on a real slide. A :class:`~hemascope.synthetic.spec.DomainShift`
rotates the OD vectors around the grey axis (stain hue) and scales them (stain intensity).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hemascope.synthetic.spec import DomainShift

#: Colour (RGB on white light) of one unit of each stained structure, after a May–Grünwald–Giemsa
#: stain as seen in the CellaVision images of normal blood (Acevedo et al. 2020).
STAIN_RGB: dict[str, tuple[int, int, int]] = {
    "rbc": (226, 180, 186),  # haemoglobin, mauve-pink
    "platelet": (160, 112, 182),  # purple granulomere
    "platelet_rim": (214, 200, 226),  # pale hyalomere
    "chromatin": (160, 124, 190),  # purple nucleus (condensed chromatin is drawn denser)
    "chromatin_fine": (168, 138, 200),  # open, lacy chromatin of blasts and monocytes
    "nucleolus": (184, 170, 210),  # pale blue-grey nucleoli
    "cyto_neutrophil": (232, 210, 216),  # pale pink-lilac
    "cyto_lymphocyte": (172, 182, 228),  # sky blue
    "cyto_monocyte": (198, 188, 218),  # grey-blue ground glass
    "cyto_eosinophil": (234, 214, 206),
    "cyto_basophil": (214, 196, 220),
    "cyto_blast": (158, 170, 224),  # deep basophilic blue
    "cyto_promyelocyte": (170, 168, 220),
    "cyto_myelocyte": (222, 196, 208),  # pinkish, secondary granules
    "cyto_erythroblast": (176, 166, 204),  # polychromatic grey-blue
    "cyto_orthochromatic": (214, 170, 172),  # haemoglobinised
    "gran_neutrophil": (196, 150, 186),  # fine lilac
    "gran_eosinophil": (234, 150, 120),  # orange-red, refractile
    "gran_eosinophil_dark": (96, 50, 120),  # inv(16) abnormal eosinophil granules
    "gran_basophil": (58, 30, 92),  # dark purple-black
    "gran_azurophilic": (118, 48, 128),  # primary (azurophilic) granules, reddish purple
    "auer": (132, 42, 104),  # Auer rods: magenta-red
    "vacuole": (250, 248, 250),  # nearly clear
}


def rgb_to_od(rgb: tuple[int, int, int] | np.ndarray) -> np.ndarray:
    """Optical density ``-ln(rgb / 255)`` of an RGB colour (values clipped to 1..255)."""
    arr = np.clip(np.asarray(rgb, dtype=np.float64), 1.0, 255.0)
    return -np.log(arr / 255.0)


def _hue_rotation(hue_deg: float) -> np.ndarray:
    """3x3 rotation about the grey axis (1, 1, 1) / sqrt(3) by ``hue_deg`` (Rodrigues)."""
    theta = np.deg2rad(hue_deg)
    k = np.ones(3) / np.sqrt(3.0)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * (kx @ kx)


class Palette:
    """The OD vector of every stained structure under one :class:`DomainShift`.

    Attributes
    ----------
    od
        ``name -> float32 (3,)`` optical density of one unit of that structure.
    glass
        OD of bare glass (the background), unaffected by the stain.
    """

    def __init__(self, shift: DomainShift) -> None:
        rot = _hue_rotation(shift.hue_deg)
        self.od: dict[str, np.ndarray] = {}
        for name, rgb in STAIN_RGB.items():
            vec = rot @ rgb_to_od(rgb) * shift.intensity
            self.od[name] = np.clip(vec, 0.0, None).astype(np.float32)
        self.glass = rgb_to_od(shift.background).astype(np.float32)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.od[name]


@lru_cache(maxsize=16)
def palette_for(shift: DomainShift) -> Palette:
    """The (cached) :class:`Palette` of a shift."""
    return Palette(shift)


def od_to_rgb(od: np.ndarray) -> np.ndarray:
    """Convert an OD image ``(..., 3)`` to RGB uint8 (``255 * exp(-od)``, rounded)."""
    out = np.exp(-od, dtype=np.float32)
    out *= 255.0
    out += 0.5
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)
