"""Canonical cell classes, genetic subtypes and the one colour palette shared everywhere.

Layers, the gallery, plots, GeoJSON exports and reports all take their colours from
:data:`CLASS_COLORS`, so a class looks the same wherever it is shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

#: White-cell (and related) classes known to the ``wbc`` model, in model output order.
CELL_CLASSES: tuple[str, ...] = (
    "basophil",
    "eosinophil",
    "erythroblast",
    "ig",  # immature granulocyte (promyelocyte, myelocyte, metamyelocyte)
    "lymphocyte",
    "monocyte",
    "neutrophil",
    "platelet",
    "blast",
)

#: Human-readable names for display.
CLASS_LABELS: dict[str, str] = {
    "basophil": "Basophil",
    "eosinophil": "Eosinophil",
    "erythroblast": "Erythroblast",
    "ig": "Immature granulocyte",
    "lymphocyte": "Lymphocyte",
    "monocyte": "Monocyte",
    "neutrophil": "Neutrophil",
    "platelet": "Platelet",
    "blast": "Blast",
    "nonblast": "Non-blast",
    "Benign": "Benign",
    "Early": "Early pre-B ALL",
    "Pre": "Pre-B ALL",
    "Pro": "Pro-B ALL",
    "unclassified": "Unclassified",
}

#: Fixed colours (hex RGB) per class.
CLASS_COLORS: dict[str, str] = {
    "basophil": "#6a3d9a",
    "eosinophil": "#ff7f00",
    "erythroblast": "#b15928",
    "ig": "#fdbf6f",
    "lymphocyte": "#1f78b4",
    "monocyte": "#33a02c",
    "neutrophil": "#a6cee3",
    "platelet": "#cab2d6",
    "blast": "#e31a1c",
    # classes of the cell models that are not white-cell types (blast: binary; taleqani-cells: B-ALL stage)
    "nonblast": "#1b9e9e",
    "Benign": "#66c2a5",
    "Early": "#fc8d62",
    "Pre": "#8da0cb",
    "Pro": "#e78ac3",
    "unclassified": "#999999",
}

#: Genetic subtypes of the demo AML subtype model (synthetic, demo only).
AML_SUBTYPES: tuple[str, ...] = ("PML::RARA", "NPM1", "CBFB::MYH11", "RUNX1::RUNX1T1", "control")

#: Labels of the Taleqani B-ALL bag model.
ALL_STAGES: tuple[str, ...] = ("Benign", "Early", "Pre", "Pro")

RESEARCH_USE_ONLY = "research use only — not for diagnosis"

#: Names other data sets and labs give the canonical cell classes (compared by :func:`label_key`):
#: PBC/Acevedo file prefixes (SNE, MY, ...), Matek et al. 2019 codes (NGS, MYO, KSC, ...),
#: Raabin-WBC, LISC and BCCD folders, CellaVision/DeepAPL classes. Band and segmented neutrophils
#: are neutrophils, reactive lymphocytes lymphocytes, pro-/myelo-/metamyelocytes immature
#: granulocytes, and the WHO blast equivalents (promonocytes) blasts, as in the training maps.
CLASS_SYNONYMS: dict[str, tuple[str, ...]] = {
    "neutrophil": ("segmentedneutrophil", "bandneutrophil", "band", "segmented", "neut", "neu",
                   "sne", "bne", "ngs", "ngb", "pmn", "polymorphonuclear"),
    "lymphocyte": ("lymph", "lymp", "lym", "ly", "lyt", "lya", "variantlymphocyte",
                   "reactivelymphocyte", "atypicallymphocyte", "typicallymphocyte",
                   "smalllymphocyte", "largelymphocyte"),
    "monocyte": ("mono", "mon", "mo"),
    "eosinophil": ("eosi", "eos", "eo"),
    "basophil": ("baso", "bas", "ba"),
    "erythroblast": ("nrbc", "normoblast", "ebo", "erb", "nucleatedredbloodcell", "nucleatedrbc"),
    "ig": ("immaturegranulocyte", "promyelocyte", "myelocyte", "metamyelocyte", "pmy", "my",
           "mmy", "mmz", "myb", "pmo", "pmb", "immature", "precursor"),
    "platelet": ("plt", "thrombocyte", "giantplatelet", "plateletaggregate", "plateletclump"),
    "blast": ("myeloblast", "lymphoblast", "monoblast", "promonocyte", "myo", "mob", "blastcell"),
    "smudge": ("smudgecell", "ksc", "basketcell"),
}


def label_key(text: object) -> str:
    """A label compared without case, spaces or punctuation (``PML_RARA`` ~ ``PML::RARA``)."""
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


@lru_cache(maxsize=16)
def _class_lookup(classes: tuple[str, ...]) -> dict[str, str]:
    """``{label key: class}`` for the classes and their synonyms (built once per class list, not
    once per cell of a table)."""
    lookup = {label_key(c): c for c in classes}
    for name in classes:
        for synonym in CLASS_SYNONYMS.get(name, ()):
            lookup.setdefault(synonym, name)
    return lookup


def canonical_cell_class(label: object, classes: Sequence[str]) -> str | None:
    """The class of ``classes`` that a data set's cell label names, or ``None``.

    Labels match a class ignoring case, punctuation and a plural ``s`` (``Neutrophils``,
    ``NEUTROPHIL``), or through :data:`CLASS_SYNONYMS` when that synonym's canonical class is
    one of ``classes`` (``segmented_neutrophil`` and ``NGS`` → ``neutrophil``; ``myeloblast``
    → ``blast``); failing that, a label whose words name exactly one class takes it
    (``01_neutrophil``, ``Neutrophil (segmented)``; ``lymphocyte/monocyte`` names none).
    """
    lookup = _class_lookup(tuple(classes))
    found = _lookup_key(label_key(label), lookup)
    if found is not None:
        return found
    # a folder or label with more words than a class name (``01_neutrophil``, ``Neutrophil
    # (segmented)``, ``Lymphocyte - reactive``): the class its words name, if they name one only
    named = {_lookup_key(word, lookup) for word in re.findall(r"[a-z]+", str(label).lower())}
    named.discard(None)
    return named.pop() if len(named) == 1 else None


def _lookup_key(key: str, lookup: dict[str, str]) -> str | None:
    """The class of a label key, allowing a plural ``s``."""
    if key in lookup:
        return lookup[key]
    return lookup.get(key[:-1]) if key.endswith("s") else None


def class_color(name: str) -> str:
    """The palette colour of a class (grey for unknown names)."""
    return CLASS_COLORS.get(name, CLASS_COLORS["unclassified"])


def class_rgba(name: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    """The palette colour of a class as an RGBA tuple of floats in [0, 1]."""
    h = class_color(name).lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4))
    return (r, g, b, alpha)
