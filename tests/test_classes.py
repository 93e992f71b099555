"""Cell labels as other data sets name them, mapped onto the canonical classes."""

import pytest

from hemascope.classes import CELL_CLASSES, canonical_cell_class


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Neutrophil", "neutrophil"), ("NEUTROPHILS", "neutrophil"), ("segmented_neutrophil", "neutrophil"),
        ("NGS", "neutrophil"), ("band", "neutrophil"), ("Lymphocyte (reactive)", "lymphocyte"),
        ("variant lymphocyte", "lymphocyte"), ("LYT", "lymphocyte"), ("Mono", "monocyte"),
        ("eos", "eosinophil"), ("Basophils", "basophil"), ("NRBC", "erythroblast"),
        ("promyelocyte", "ig"), ("MMZ", "ig"), ("Myeloblast", "blast"), ("promonocyte", "blast"),
        ("MYO", "blast"), ("thrombocytes", "platelet"), ("smudge", None), ("artefact", None),
        # folders named with more words than a class: the one class their words name
        ("01_neutrophil", "neutrophil"), ("Neutrophil (segmented)", "neutrophil"),
        ("neutrophil_band", "neutrophil"), ("2. Eosinophils", "eosinophil"), ("Blast cells", "blast"),
        ("Immature granulocytes (myelocyte)", "ig"), ("lymphocyte/monocyte", None),
        ("immature neutrophil", None), ("Plasma cell", None), ("unknown", None),
    ],
)
def test_canonical_cell_class_names_a_datasets_label(label, expected):
    assert canonical_cell_class(label, CELL_CLASSES) == expected


def test_synonyms_only_name_the_classes_asked_for():
    assert canonical_cell_class("myeloblast", ["blast", "nonblast"]) == "blast"
    assert canonical_cell_class("neutrophil", ["blast", "nonblast"]) is None
    assert canonical_cell_class("KSC", [*CELL_CLASSES, "smudge"]) == "smudge"
    assert canonical_cell_class("Non-Blast", ["blast", "nonblast"]) == "nonblast"
