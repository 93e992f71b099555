"""Haematological morphology of every synthetic cell type, in µm.

:data:`MORPHOLOGY` lists, per cell type (class + subclass), the diameter on a smear, the nuclear
shape and N:C ratio, chromatin texture, nucleoli, cytoplasm colour and granules, after the standard
descriptions (e.g. Bain, *Blood Cells: A Practical Guide*; WHO classification of AML):

* segmented neutrophil 10–14 µm, 2–5 lobes joined by filaments, clumped chromatin, pale lilac cytoplasm
  with fine granules; band: an unsegmented C/U-shaped band;
* lymphocyte 7–10 µm, round dense nucleus, N:C ≈ 0.8, a rim of sky-blue cytoplasm;
* monocyte 12–20 µm, folded/kidney nucleus with lacy chromatin, grey-blue cytoplasm, vacuoles;
* eosinophil 12–17 µm, bilobed nucleus, packed orange-red granules; basophil 10–14 µm, nucleus
  obscured by coarse purple-black granules;
* immature granulocytes: promyelocyte 15–25 µm (eccentric nucleus, nucleoli, azurophilic granules,
  Golgi hof), myelocyte 12–18 µm (round nucleus, pink cytoplasm), metamyelocyte (kidney nucleus);
* erythroblast 7–15 µm: very round, dense nucleus; basophilic to polychromatic to orthochromatic
  cytoplasm as it matures;
* myeloblast 12–20 µm, N:C 0.7–0.9, fine open chromatin, 1–4 nucleoli, scant deep-blue cytoplasm.

:func:`blast_type` and :func:`eosinophil_type` give the slide's genetic subtype its look:
PML::RARA hypergranular promyelocytes with bilobed nuclei and bundles of Auer rods (faggot cells);
NPM1 cup-like (fish-mouth) nuclear invaginations; CBFB::MYH11 myelomonocytic blasts and abnormal
eosinophils with large dark purple granules; RUNX1::RUNX1T1 large blasts with abundant basophilic
cytoplasm, a perinuclear hof and single long, slender Auer rods.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

_BASE = {
    "nucleus": "round",  # round | kidney | band | segmented | bilobed | cup
    "nc": 0.5,  # nucleus area / cell area
    "nuc_offset": 0.1,  # nucleus centre offset as a fraction of the cell radius
    "chromatin": "chromatin",  # palette entry of the nucleus
    "chromatin_density": 1.9,  # OD units of the nucleus
    "clump_um": 0.9,  # chromatin clump size
    "clump_contrast": 0.3,
    "nucleoli": (0, 0),  # min, max count
    "cyto": "cyto_neutrophil",
    "cyto_density": 1.0,
    "granules": None,  # palette entry
    "granule_density": 0.0,  # granules per µm² of cell
    "granule_um": 0.3,
    "granule_peak": 1.0,
    "granules_over_nucleus": False,
    "vacuoles": (0, 0),
    "hof": False,
    "auer": None,  # None | "single" | "bundle"
    "auer_prob": 0.0,
}


def _m(**kw: object) -> dict:
    return {**_BASE, **kw}


# fmt: off
#: Morphology per ``(class, subclass)``; diameters are ``(mean, sd)`` in µm.
MORPHOLOGY: dict[tuple[str, str], dict] = {
    ("neutrophil", "segmented"): _m(diameter=(12.0, 1.0), nucleus="segmented", nc=0.28,
                                    clump_contrast=0.35, granules="gran_neutrophil",
                                    granule_density=0.5, granule_um=0.25, granule_peak=0.5),
    ("neutrophil", "band"): _m(diameter=(12.0, 1.0), nucleus="band", nc=0.3, clump_contrast=0.35,
                               granules="gran_neutrophil", granule_density=0.5,
                               granule_um=0.25, granule_peak=0.5),
    ("lymphocyte", ""): _m(diameter=(8.5, 1.0), nc=0.78, nuc_offset=0.08, chromatin_density=2.2,
                           clump_um=1.0, clump_contrast=0.35, cyto="cyto_lymphocyte"),
    ("monocyte", ""): _m(diameter=(16.0, 1.8), nucleus="kidney", nc=0.45, nuc_offset=0.15,
                         chromatin="chromatin_fine", chromatin_density=1.7, clump_um=0.6,
                         clump_contrast=0.25, cyto="cyto_monocyte", vacuoles=(0, 6),
                         granules="gran_neutrophil", granule_density=0.15, granule_peak=0.4),
    ("eosinophil", "normal"): _m(diameter=(13.5, 1.2), nucleus="bilobed", nc=0.3,
                                 cyto="cyto_eosinophil", granules="gran_eosinophil",
                                 granule_density=1.8, granule_um=0.35, granule_peak=0.5),
    ("eosinophil", "abnormal"): _m(diameter=(14.0, 1.2), nucleus="kidney", nc=0.38,
                                   cyto="cyto_eosinophil", granules="gran_eosinophil_dark",
                                   granule_density=1.0, granule_um=0.45, granule_peak=0.6),
    ("basophil", ""): _m(diameter=(11.5, 1.0), nucleus="bilobed", nc=0.35, chromatin_density=1.6,
                         cyto="cyto_basophil", granules="gran_basophil", granule_density=0.9,
                         granule_um=0.45, granule_peak=0.6, granules_over_nucleus=True),
    ("ig", "promyelocyte"): _m(diameter=(18.0, 2.2), nc=0.5, nuc_offset=0.22,
                               chromatin="chromatin_fine", chromatin_density=1.7, clump_um=0.6,
                               clump_contrast=0.2, nucleoli=(1, 2), cyto="cyto_promyelocyte",
                               granules="gran_azurophilic", granule_density=0.9,
                               granule_um=0.3, granule_peak=0.8, granules_over_nucleus=True,
                               hof=True),
    ("ig", "myelocyte"): _m(diameter=(14.0, 1.5), nc=0.45, nuc_offset=0.25,
                            chromatin_density=1.8, cyto="cyto_myelocyte",
                            granules="gran_neutrophil", granule_density=0.8, granule_um=0.25,
                            granule_peak=0.6),
    ("ig", "metamyelocyte"): _m(diameter=(12.5, 1.2), nucleus="kidney", nc=0.4,
                                cyto="cyto_myelocyte", granules="gran_neutrophil",
                                granule_density=0.7, granule_um=0.25, granule_peak=0.55),
    ("erythroblast", "basophilic"): _m(diameter=(13.0, 1.5), nc=0.65, nuc_offset=0.05,
                                       chromatin_density=2.0, clump_um=0.8,
                                       cyto="cyto_blast", cyto_density=1.2),
    ("erythroblast", "polychromatic"): _m(diameter=(10.0, 1.0), nc=0.45, nuc_offset=0.08,
                                          chromatin_density=2.5, clump_um=0.9,
                                          clump_contrast=0.35, cyto="cyto_erythroblast"),
    ("erythroblast", "orthochromatic"): _m(diameter=(8.5, 0.8), nc=0.28, nuc_offset=0.15,
                                           chromatin_density=3.0, clump_contrast=0.1,
                                           cyto="cyto_orthochromatic"),
    ("blast", "myeloblast"): _m(diameter=(15.0, 2.0), nc=0.75, nuc_offset=0.06,
                                chromatin="chromatin_fine", chromatin_density=1.5, clump_um=0.5,
                                clump_contrast=0.15, nucleoli=(1, 4), cyto="cyto_blast",
                                cyto_density=1.15, granules="gran_azurophilic",
                                granule_density=0.05, auer="single", auer_prob=0.05),
    ("blast", "hypergranular_promyelocyte"): _m(diameter=(18.0, 2.0), nucleus="bilobed", nc=0.5,
                                                chromatin="chromatin_fine", chromatin_density=1.6,
                                                clump_um=0.5, clump_contrast=0.15,
                                                cyto="cyto_promyelocyte",
                                                granules="gran_azurophilic", granule_density=1.8,
                                                granule_um=0.35, granule_peak=0.38,
                                                granules_over_nucleus=True, auer="bundle",
                                                auer_prob=0.45),
    ("blast", "cuplike"): _m(diameter=(15.0, 1.8), nucleus="cup", nc=0.7, nuc_offset=0.05,
                             chromatin="chromatin_fine", chromatin_density=1.5, clump_um=0.5,
                             clump_contrast=0.15, nucleoli=(1, 3), cyto="cyto_blast",
                             cyto_density=1.05, auer="single", auer_prob=0.03),
    ("blast", "myelomonoblast"): _m(diameter=(16.5, 2.0), nucleus="kidney", nc=0.62,
                                    chromatin="chromatin_fine", chromatin_density=1.5,
                                    clump_um=0.5, clump_contrast=0.15, nucleoli=(1, 3),
                                    cyto="cyto_monocyte", cyto_density=1.2,
                                    granules="gran_azurophilic", granule_density=0.1,
                                    vacuoles=(0, 3), auer="single", auer_prob=0.05),
    ("blast", "hof_blast"): _m(diameter=(17.5, 2.0), nc=0.5, nuc_offset=0.25,
                               chromatin="chromatin_fine", chromatin_density=1.5, clump_um=0.5,
                               clump_contrast=0.15, nucleoli=(1, 3), cyto="cyto_blast",
                               cyto_density=1.25, granules="gran_azurophilic",
                               granule_density=0.2, hof=True, auer="long", auer_prob=0.45),
    ("platelet", ""): _m(diameter=(2.8, 0.6), nucleus="none", nc=0.0, cyto="platelet_rim",
                         granules="platelet", granule_density=3.0, granule_um=0.3,
                         granule_peak=1.3),
}
# fmt: on

#: Subclass frequencies of classes that have subclasses.
SUBCLASS_MIX: dict[str, dict[str, float]] = {
    "neutrophil": {"segmented": 0.85, "band": 0.15},
    "ig": {"promyelocyte": 0.2, "myelocyte": 0.45, "metamyelocyte": 0.35},
    "erythroblast": {"basophilic": 0.1, "polychromatic": 0.6, "orthochromatic": 0.3},
}

_BLAST_BY_SUBTYPE = {
    "control": "myeloblast",
    "PML::RARA": "hypergranular_promyelocyte",
    "NPM1": "cuplike",
    "CBFB::MYH11": "myelomonoblast",
    "RUNX1::RUNX1T1": "hof_blast",
}


def blast_type(subtype: str) -> str:
    """The blast subclass drawn on a slide of genetic ``subtype``."""
    return _BLAST_BY_SUBTYPE[subtype]


def eosinophil_type(subtype: str, rng: np.random.Generator) -> str:
    """``"abnormal"`` (dark inv(16) granules) for most eosinophils of CBFB::MYH11 slides, else ``"normal"``."""
    return "abnormal" if subtype == "CBFB::MYH11" and rng.random() < 0.7 else "normal"


@dataclass(frozen=True)
class CellPlan:
    """Where a cell is and the outline of its body; its inside is drawn from ``seed``.

    Attributes
    ----------
    cls, subclass
        Class (from :data:`hemascope.classes.CELL_CLASSES`) and subclass (``""`` if none).
    y_um, x_um
        Centre in slide µm (pixel ``(row, col)`` has its centre at ``(row, col) * mpp``).
    radius
        Mean body radius in µm.
    aspect, angle
        Body ellipse axis ratio and orientation (radians).
    harmonics
        ``(k, 3)`` outline wobble rows ``(order, amplitude, phase)``.
    seed
        Seed of everything inside the cell (nucleus, chromatin, granules, Auer rods).
    features
        Subtype-defining features drawn on this cell: ``"auer_rod"``, ``"auer_bundle"``,
        ``"cup_nucleus"``, ``"hof"``, ``"dark_granules"``, ``"hypergranular"``.
    """

    cls: str
    subclass: str
    y_um: float
    x_um: float
    radius: float
    aspect: float
    angle: float
    harmonics: np.ndarray
    seed: int
    features: tuple[str, ...] = ()

    @property
    def morphology(self) -> dict:
        """The :data:`MORPHOLOGY` entry of this cell type."""
        return MORPHOLOGY[(self.cls, self.subclass)]

    @cached_property
    def extents(self) -> tuple[float, float, float, float]:
        """Tight body extents ``(up, down, left, right)`` in µm from the centre (cached)."""
        theta = np.linspace(0, 2 * np.pi, 256, endpoint=False)
        from hemascope.synthetic.shapes import polar_radius

        r = polar_radius(theta, self.radius, self.aspect, self.angle, self.harmonics)
        ys, xs = r * np.sin(theta), r * np.cos(theta)
        return float(-ys.min()), float(ys.max()), float(-xs.min()), float(xs.max())


def plan_cell(
    rng: np.random.Generator, cls: str, subtype: str, y_um: float, x_um: float
) -> CellPlan:
    """Draw the type and body outline of one cell of class ``cls`` centred at ``(y_um, x_um)``.

    Parameters
    ----------
    rng
        Source of randomness (the layout's block generator).
    cls
        Cell class.
    subtype
        Slide genetic subtype (decides blast and eosinophil types).
    y_um, x_um
        Centre in slide µm.

    Returns
    -------
    CellPlan
        The planned cell.
    """
    if cls == "blast":
        subclass = blast_type(subtype)
    elif cls == "eosinophil":
        subclass = eosinophil_type(subtype, rng)
    elif cls in SUBCLASS_MIX:
        names = list(SUBCLASS_MIX[cls])
        probs = np.array([SUBCLASS_MIX[cls][n] for n in names])
        subclass = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    else:
        subclass = ""
    mean, sd = MORPHOLOGY[(cls, subclass)]["diameter"]
    diameter = float(np.clip(rng.normal(mean, sd), 0.7 * mean, 1.35 * mean))
    irregular = 0.1 if cls == "platelet" else 0.025
    harmonics = np.stack(
        [
            np.arange(2, 6),
            rng.uniform(0, irregular, 4) / np.arange(1, 5),
            rng.uniform(0, 2 * np.pi, 4),
        ],
        axis=1,
    )
    morph = MORPHOLOGY[(cls, subclass)]
    features = []
    if morph["auer"] is not None and rng.random() < morph["auer_prob"]:
        features.append("auer_bundle" if morph["auer"] == "bundle" else "auer_rod")
    if morph["nucleus"] == "cup":
        features.append("cup_nucleus")
    if morph["hof"]:
        features.append("hof")
    if morph["granules"] == "gran_eosinophil_dark":
        features.append("dark_granules")
    if cls == "blast" and morph["granule_density"] > 1.0:
        features.append("hypergranular")
    return CellPlan(
        cls=cls,
        subclass=subclass,
        y_um=float(y_um),
        x_um=float(x_um),
        radius=diameter / 2.0,
        aspect=float(1.0 + abs(rng.normal(0, 0.06 if cls != "platelet" else 0.2))),
        angle=float(rng.uniform(0, np.pi)),
        harmonics=harmonics,
        seed=int(rng.integers(0, 2**63 - 1)),
        features=tuple(features),
    )
