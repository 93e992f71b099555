"""Single cells: every class has its size, N:C ratio and colours; subtypes and domain shifts act."""

import numpy as np
import pytest
from skimage.measure import regionprops

from hemascope.classes import CELL_CLASSES
from hemascope.errors import InvalidInputError
from hemascope.synthetic import DomainShift, SmearSpec, render_cell, render_field

MPP = 0.25
# expected diameter range (µm) on a smear, from haematology atlases
DIAMETER = {
    "basophil": (9, 15),
    "eosinophil": (10.5, 18),
    "erythroblast": (6.5, 16),
    "ig": (10, 26),
    "lymphocyte": (6.5, 11.5),
    "monocyte": (11.5, 22),
    "neutrophil": (9.5, 15),
    "platelet": (1.5, 4.5),
    "blast": (10.5, 21),
}


def _cells(cls, n=6, subtype=None, shift=None, mpp=MPP, seed=0):
    rng = np.random.default_rng([seed, CELL_CLASSES.index(cls)])
    return [
        render_cell(cls, mpp=mpp, size=112, rng=rng, subtype=subtype, shift=shift) for _ in range(n)
    ]


def _stats(cells):
    """Mean diameter (µm), N:C area ratio, mean cytoplasm RGB, mean nucleus RGB over crops."""
    diam, nc, cyto, nuc = [], [], [], []
    for image, cell, nucleus in cells:
        diam.append(2 * np.sqrt(cell.sum() * MPP * MPP / np.pi))
        nc.append(nucleus.sum() / cell.sum())
        ring = cell & ~nucleus
        cyto.append(image[ring].mean(axis=0))
        if nucleus.any():
            nuc.append(image[nucleus].mean(axis=0))
    nuc_mean = np.mean(nuc, axis=0) if nuc else None
    return np.mean(diam), np.mean(nc), np.mean(cyto, axis=0), nuc_mean


@pytest.fixture(scope="module")
def stats():
    return {cls: _stats(_cells(cls)) for cls in CELL_CLASSES}


@pytest.mark.parametrize("cls", CELL_CLASSES)
def test_every_class_has_its_size_and_a_dark_nucleus(stats, cls):
    diameter, nc, cyto, nuc = stats[cls]
    lo, hi = DIAMETER[cls]
    assert lo <= diameter <= hi
    if cls == "platelet":
        assert nc == 0 and nuc is None
    else:
        assert nuc.mean() < cyto.mean() - 15  # chromatin stains darker than cytoplasm


def test_nc_ratio_and_colours_follow_morphology(stats):
    nc = {c: s[1] for c, s in stats.items()}
    assert nc["lymphocyte"] > 0.6 and nc["blast"] > 0.6
    assert nc["neutrophil"] < 0.4 and nc["eosinophil"] < 0.45 and nc["monocyte"] < nc["blast"]
    cyto = {c: s[2] for c, s in stats.items()}
    r, b = 0, 2
    assert cyto["lymphocyte"][b] - cyto["lymphocyte"][r] > 25  # sky-blue rim
    assert cyto["blast"][b] - cyto["blast"][r] > 25  # basophilic cytoplasm
    assert cyto["neutrophil"][r] > cyto["neutrophil"][b] - 10  # pale lilac-pink
    assert cyto["eosinophil"][r] - cyto["eosinophil"][b] > 15  # orange-red granules
    whole = {c: s[2].mean() for c, s in stats.items()}
    assert whole["basophil"] < whole["neutrophil"] - 40  # dark granules everywhere
    sizes = {c: s[0] for c, s in stats.items()}
    assert sizes["platelet"] < sizes["lymphocyte"] < sizes["neutrophil"] < sizes["monocyte"]


def _truth_features(subtype):
    spec = SmearSpec(
        size=1024,
        seed=4,
        subtype=subtype,
        wbc_density=500.0,
        class_mix={"blast": 3, "eosinophil": 1},
        glass_margin=0,
    )
    cells = render_field(spec, masks=False)[1].white_cells()
    return cells[cells["class"] == "blast"], cells[cells["class"] == "eosinophil"]


def test_subtype_features_are_recorded_per_cell():
    blasts, eos = _truth_features("control")
    assert set(blasts["subclass"]) == {"myeloblast"} and set(eos["subclass"]) == {"normal"}
    assert not blasts["features"].str.contains("bundle|cup|hof").any()
    blasts, _ = _truth_features("PML::RARA")
    assert blasts["features"].str.contains("hypergranular").all()
    assert blasts["features"].str.contains("auer_bundle").mean() > 0.2
    blasts, _ = _truth_features("NPM1")
    assert blasts["features"].str.contains("cup_nucleus").all()
    blasts, _ = _truth_features("RUNX1::RUNX1T1")
    assert blasts["features"].str.contains("hof").all()
    assert blasts["features"].str.contains("auer_rod").mean() > 0.2
    _, eos = _truth_features("CBFB::MYH11")
    assert (eos["subclass"] == "abnormal").mean() > 0.4
    assert (eos["features"] == "dark_granules").sum() == (eos["subclass"] == "abnormal").sum()


def test_subtypes_change_blast_pixels():
    def solidity(cells):
        return np.mean([regionprops(nuc.astype(np.uint8))[0].solidity for _, _, nuc in cells])

    control = _cells("blast", n=8, subtype="control")
    npm1 = _cells("blast", n=8, subtype="NPM1")
    assert solidity(npm1) < solidity(control) - 0.03  # cup-like invagination
    apl = _stats(_cells("blast", n=8, subtype="PML::RARA"))
    ctrl = _stats(control)
    assert apl[0] > ctrl[0]  # promyelocytes are larger
    assert apl[1] < ctrl[1] - 0.1  # and have more cytoplasm
    normal_eos = _stats(_cells("eosinophil", n=8, subtype="control"))
    inv16_eos = _stats(_cells("eosinophil", n=12, subtype="CBFB::MYH11", seed=1))
    assert (inv16_eos[2][0] - inv16_eos[2][2]) < (normal_eos[2][0] - normal_eos[2][2]) - 5


def test_domain_shift_changes_what_it_should():
    def one(shift=None, mpp=MPP):
        return render_cell("monocyte", mpp=mpp, size=112, rng=np.random.default_rng(9), shift=shift)

    base, cell, nuc = one()
    again = one()
    assert np.array_equal(base, again[0])  # deterministic
    hue, cell_h, _ = one(DomainShift(hue_deg=25))
    assert np.array_equal(cell, cell_h) and np.abs(hue.astype(int) - base).mean() > 2
    dark = one(DomainShift(intensity=1.6))[0]
    assert dark[cell].mean() < base[cell].mean() - 15
    blurred = one(DomainShift(blur_um=1.0))[0]
    assert (
        np.abs(np.diff(blurred.astype(float), axis=1)).mean()
        < 0.7 * np.abs(np.diff(base.astype(float), axis=1)).mean()
    )
    noisy = one(DomainShift(noise=6.0))[0]
    assert (noisy.astype(int) - base).std() == pytest.approx(6.0, rel=0.25)
    jpeg = one(DomainShift(jpeg_quality=15))[0]
    assert 0.5 < np.abs(jpeg.astype(int) - base).mean() < 12
    coarse_cell = one(mpp=2 * MPP)[1]
    assert coarse_cell.sum() * 4 == pytest.approx(cell.sum(), rel=0.15)  # drawn in µm


def test_render_cell_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidInputError):
        render_cell("macrophage", mpp=0.25, size=64, rng=rng)
    with pytest.raises(InvalidInputError):
        render_cell("blast", mpp=0.25, size=64, rng=rng, subtype="BCR::ABL1")
    with pytest.raises(InvalidInputError):
        render_cell("blast", mpp=0.0, size=64, rng=rng)
