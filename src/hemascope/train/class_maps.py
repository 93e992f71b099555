"""How each training source's labels map onto the canonical cell classes of the ``wbc`` model.

Every source names cells its own way. The maps below are the documented choices behind the
bundled ``wbc`` model (see ``docs/models.md``); ``None`` means "not used for training".

DeepAPL (CellaVision technologists' classes, Sidhom et al. 2021):

* ``blast`` → blast; ``promonocyte`` → blast (a WHO blast equivalent in AML counts).
* ``promyelocyte``, ``myelocyte``, ``metamyelocyte`` → ig, as PBC files its PMY/MY/MMY images.
  Abnormal (APL) promyelocytes are also WHO blast equivalents, but which promyelocyte is
  abnormal depends on the patient's diagnosis, and the diagnosis must never enter a cell label
  (it would leak the APL label into the embeddings the slide model reads). So all promyelocytes
  are ig, as a technologist files them.
* ``band_neutrophil``, ``segmented_neutrophil`` → neutrophil (as PBC's BNE/SNE).
* ``lymphocyte``, ``variant_lymphocyte`` (reactive) → lymphocyte; ``prolymphocyte`` (one cell)
  → not used.
* ``monocyte``, ``eosinophil``, ``basophil``, ``erythroblast`` → themselves.
* ``giant_platelet``, ``platelet_aggregate`` → platelet (PBC's platelet class holds both).
* ``smudge`` → ``smudge``: a reject output of the model; a cell whose top class is a reject
  class is reported as ``unclassified`` and stays out of the differential.
* ``plasma_cell`` (44 cells) → not used: no canonical class, too few to learn one.

PBC keeps its folder classes. Taleqani B-ALL field cells inherit their field's label: cells of
Early/Pre/Pro fields → blast (lymphoblasts, noisy), Benign fields → not used.
"""

from __future__ import annotations

import pandas as pd

#: DeepAPL technologist class → canonical class (``None``: not used for training).
DEEPAPL_CLASS_MAP: dict[str, str | None] = {
    "blast": "blast",
    "promonocyte": "blast",
    "promyelocyte": "ig",
    "myelocyte": "ig",
    "metamyelocyte": "ig",
    "band_neutrophil": "neutrophil",
    "segmented_neutrophil": "neutrophil",
    "lymphocyte": "lymphocyte",
    "variant_lymphocyte": "lymphocyte",
    "prolymphocyte": None,
    "monocyte": "monocyte",
    "eosinophil": "eosinophil",
    "basophil": "basophil",
    "erythroblast": "erythroblast",
    "giant_platelet": "platelet",
    "platelet_aggregate": "platelet",
    "smudge": "smudge",
    "plasma_cell": None,
}

#: Taleqani field label → class of the cells cut from the field.
TALEQANI_CLASS_MAP: dict[str, str | None] = {
    "Early": "blast",
    "Pre": "blast",
    "Pro": "blast",
    "Benign": None,
}

#: The reject output of the bundled ``wbc`` model (not a white-cell type of the differential).
REJECT_CLASSES: tuple[str, ...] = ("smudge",)


def map_classes(table: pd.DataFrame, mapping: dict[str, str | None]) -> pd.DataFrame:
    """Map a table's ``class`` column through ``mapping``; rows mapped to ``None`` are dropped.

    The source label is kept in a ``source_class`` column. Labels missing from ``mapping`` raise
    ``KeyError`` (a new label must be mapped on purpose, not silently).
    """
    source = table["class"].astype(str)
    unknown = sorted(set(source) - set(mapping))
    if unknown:
        raise KeyError(f"labels without a mapping: {unknown}")
    mapped = source.map(mapping)
    out = table.assign(source_class=source, **{"class": mapped})
    return out[mapped.notna().to_numpy()].reset_index(drop=True)
