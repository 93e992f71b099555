import numpy as np
import pandas as pd
import pytest
from slide_helpers import make_bags

from hemascope.classes import AML_SUBTYPES
from hemascope.errors import DataError, InvalidInputError
from hemascope.train.bags_data import (
    bag_from_cells,
    canonical_label,
    load_bags,
    read_bag_labels,
    save_bags,
    split_bags,
)


def _layout(tmp_path, rows):
    for name in ("P01", "P02", "P03"):
        (tmp_path / name).mkdir()
    csv = tmp_path / "metadata.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def test_scemila_style_labels(tmp_path):
    csv = _layout(
        tmp_path,
        {"patient_id": ["P01", "P02", "P03"], "bag_label": ["PML_RARA", "control", "npm1"]},
    )
    table, classes = read_bag_labels(csv, classes=AML_SUBTYPES)
    assert classes == list(AML_SUBTYPES)
    assert table["label"].tolist() == ["PML::RARA", "control", "NPM1"]
    assert table["source"].tolist() == [str(tmp_path / p) for p in ("P01", "P02", "P03")]
    assert canonical_label("runx1-runx1t1", AML_SUBTYPES) == "RUNX1::RUNX1T1"


def test_labels_csv_errors(tmp_path):
    csv = _layout(tmp_path, {"bag": ["P01", "P09"], "label": ["a", "b"]})
    with pytest.raises(DataError, match="not found.*P09"):
        read_bag_labels(csv)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"bag": ["P01", "P02"], "label": ["NPM1", "dragon"]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match="unknown classes.*dragon"):
        read_bag_labels(bad, classes=AML_SUBTYPES)
    dup = tmp_path / "dup.csv"
    pd.DataFrame({"bag": ["P01", "P01"], "label": ["NPM1", "NPM1"]}).to_csv(dup, index=False)
    with pytest.raises(DataError, match="more than once"):
        read_bag_labels(dup)
    nocol = tmp_path / "nocol.csv"
    pd.DataFrame({"who": ["P01"], "label": ["NPM1"]}).to_csv(nocol, index=False)
    with pytest.raises(DataError, match="bag column"):
        read_bag_labels(nocol)
    empty = tmp_path / "empty.csv"
    empty.write_text("bag,label\n")
    with pytest.raises(DataError, match="no rows"):
        read_bag_labels(empty)
    with pytest.raises(DataError, match="does not exist"):
        read_bag_labels(tmp_path / "missing.csv")


def test_bag_from_cells_selects_blasts_and_checks_scale():
    cells = pd.DataFrame({"class": ["blast", "neutrophil", "blast"], "mpp": [0.5, 0.5, 0.51]})
    emb = np.arange(12, dtype=np.float32).reshape(3, 4)
    bag = bag_from_cells("s1", cells, emb, instances="blast", label="NPM1")
    assert bag.features.tolist() == [emb[0].tolist(), emb[2].tolist()]
    assert (bag.n_cells, bag.n_blasts) == (3, 2) and bag.mpp == pytest.approx(0.5)
    assert len(bag_from_cells("s1", cells, emb, instances="all").features) == 3
    with pytest.raises(InvalidInputError, match="mixes scales"):
        bag_from_cells("s2", cells.assign(mpp=[0.25, 0.5, 0.5]), emb, instances="blast")


def test_cache_round_trip_and_split(tmp_path):
    bags = make_bags(30)
    path = save_bags(tmp_path / "bags.npz", bags, meta={"cell_model_sha256": "abc"})
    back = load_bags(path, expect={"cell_model_sha256": "abc"})
    with pytest.raises(DataError, match="cell_model_sha256"):
        load_bags(path, expect={"cell_model_sha256": "def"})
    assert [b.name for b in back] == [b.name for b in bags]
    assert all(np.array_equal(a.features, b.features) for a, b in zip(back, bags, strict=True))
    assert [b.label for b in back] == [b.label for b in bags]
    train, val, test = split_bags(bags, seed=3)
    assert len(train) + len(val) + len(test) == 30
    assert {b.name for b in train}.isdisjoint({b.name for b in test})
    assert [b.name for b in split_bags(bags, seed=3)[2]] == [b.name for b in test]
    with pytest.raises(DataError):
        load_bags(tmp_path / "nothing.npz")
    with pytest.raises(InvalidInputError):
        split_bags(bags, (0.5, 0.5, 0.5))
