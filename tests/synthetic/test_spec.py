"""SmearSpec / DomainShift: validation, defaults and JSON round trip."""

import numpy as np
import pytest

from hemascope.classes import AML_SUBTYPES
from hemascope.errors import HemascopeError, InvalidInputError
from hemascope.synthetic import WBC_CLASSES, DomainShift, SmearSpec


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "urine"},
        {"subtype": "BCR::ABL1"},
        {"mpp": 5.0},
        {"size": 10},
        {"class_mix": {"macrophage": 1.0}},
        {"class_mix": {"blast": 0.0}},
        {"wbc_density": -1.0},
        {"glass_margin": 0.6},
        {"seed": -3},
    ],
)
def test_bad_spec_raises_documented_error(kwargs):
    with pytest.raises(InvalidInputError):
        SmearSpec(**kwargs)
    assert issubclass(InvalidInputError, HemascopeError)


@pytest.mark.parametrize(
    "kwargs", [{"hue_deg": 200}, {"intensity": 0}, {"blur_um": -1}, {"jpeg_quality": 0}]
)
def test_bad_shift_raises(kwargs):
    with pytest.raises(InvalidInputError):
        DomainShift(**kwargs)


def test_spec_round_trips_through_dict():
    spec = SmearSpec(
        size=(700, 900),
        mpp=0.25,
        seed=5,
        kind="marrow",
        subtype="NPM1",
        class_mix={"blast": 2, "lymphocyte": 1},
        shift=DomainShift(hue_deg=7, jpeg_quality=70),
    )
    again = SmearSpec.from_dict(spec.to_dict())
    assert again == spec
    with pytest.raises(InvalidInputError):
        SmearSpec.from_dict({**spec.to_dict(), "colour": "red"})


def test_default_mix_follows_kind_and_subtype():
    blood = SmearSpec().resolved_class_mix()
    assert set(blood) == set(WBC_CLASSES)
    assert sum(blood.values()) == pytest.approx(1.0)
    assert max(blood, key=blood.get) == "neutrophil"
    marrow = SmearSpec(kind="marrow").resolved_class_mix()
    assert marrow["erythroblast"] > 10 * blood["erythroblast"]
    for subtype in AML_SUBTYPES:
        mix = SmearSpec(subtype=subtype).resolved_class_mix()
        assert (mix["blast"] > 0.3) == (subtype != "control")
    inv16 = SmearSpec(subtype="CBFB::MYH11").resolved_class_mix()
    assert inv16["eosinophil"] > SmearSpec(subtype="NPM1").resolved_class_mix()["eosinophil"]
    only = SmearSpec(class_mix={"basophil": 3}).resolved_class_mix()
    assert only["basophil"] == 1.0 and only["neutrophil"] == 0.0


def test_random_shift_is_seeded_and_valid():
    a = DomainShift.random(np.random.default_rng(1))
    b = DomainShift.random(np.random.default_rng(1))
    assert a == b
    assert a != DomainShift.random(np.random.default_rng(2))
    assert DomainShift.random(np.random.default_rng(3), strength=0) == DomainShift(jpeg_quality=95)
