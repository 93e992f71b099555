"""What a synthetic smear looks like: :class:`SmearSpec` and its :class:`DomainShift`.

Both are frozen dataclasses of plain values, so a spec can be written to JSON with the ground truth
(:meth:`SmearSpec.to_dict`) and read back (:meth:`SmearSpec.from_dict`) to regenerate the very same
slide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from hemascope.classes import AML_SUBTYPES, CELL_CLASSES
from hemascope.errors import InvalidInputError

#: Smear kinds the generator knows.
SMEAR_KINDS: tuple[str, ...] = ("blood", "marrow")

#: White-cell classes drawn from the class mix (platelets have their own density).
WBC_CLASSES: tuple[str, ...] = tuple(c for c in CELL_CLASSES if c != "platelet")

#: Supported µm/px range (0.25 ≈ 40x, 0.5 ≈ 20x scanners; a little slack either side).
MPP_RANGE: tuple[float, float] = (0.1, 1.0)

_BLOOD_MIX = {
    "neutrophil": 0.58,
    "lymphocyte": 0.28,
    "monocyte": 0.07,
    "eosinophil": 0.03,
    "basophil": 0.01,
    "ig": 0.015,
    "erythroblast": 0.005,
    "blast": 0.005,
}
_MARROW_MIX = {
    "neutrophil": 0.20,
    "lymphocyte": 0.12,
    "monocyte": 0.03,
    "eosinophil": 0.03,
    "basophil": 0.005,
    "ig": 0.28,
    "erythroblast": 0.25,
    "blast": 0.02,
}
#: Blast fraction of the white cells on leukaemic slides, per kind.
_AML_BLAST_FRACTION = {"blood": 0.40, "marrow": 0.55}
#: Default white-cell density per mm² of smear (enriched against real blood so that small fields
#: hold enough white cells to test on), and relative red-cell coverage, per kind.
_WBC_DENSITY = {"blood": 150.0, "marrow": 450.0}
_RBC_DENSITY = {"blood": 1.0, "marrow": 1.15}


@dataclass(frozen=True)
class DomainShift:
    """Scanner and staining variation applied to a smear.

    Parameters
    ----------
    hue_deg
        Rotation of every stain colour around the grey axis in optical-density space (degrees);
        a few degrees mimic a bluer or redder Romanowsky stain.
    intensity
        Multiplier of stain optical density (``< 1`` washed out, ``> 1`` overstained).
    blur_um
        Gaussian blur sigma in µm (defocus); 0 for none.
    noise
        Standard deviation of additive sensor noise in 8-bit grey levels; 0 for none.
    jpeg_quality
        JPEG quality of the written slide tiles (and of a JPEG round trip applied by
        :func:`~hemascope.synthetic.render_field`); ``None`` writes quality 90 and leaves in-memory
        fields uncompressed.
    background
        RGB of bare glass under the scanner's white balance.
    """

    hue_deg: float = 0.0
    intensity: float = 1.0
    blur_um: float = 0.0
    noise: float = 0.0
    jpeg_quality: int | None = None
    background: tuple[int, int, int] = (243, 238, 236)

    def __post_init__(self) -> None:
        if not math.isfinite(self.hue_deg) or abs(self.hue_deg) > 90:
            raise InvalidInputError(f"hue_deg must be within ±90 degrees, got {self.hue_deg}")
        if not (0.2 <= self.intensity <= 3.0):
            raise InvalidInputError(f"intensity must be in [0.2, 3], got {self.intensity}")
        if not (0.0 <= self.blur_um <= 5.0):
            raise InvalidInputError(f"blur_um must be in [0, 5], got {self.blur_um}")
        if not (0.0 <= self.noise <= 50.0):
            raise InvalidInputError(f"noise must be in [0, 50], got {self.noise}")
        if self.jpeg_quality is not None and not (1 <= int(self.jpeg_quality) <= 100):
            raise InvalidInputError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        bg = tuple(int(v) for v in self.background)
        if len(bg) != 3 or not all(100 <= v <= 255 for v in bg):
            raise InvalidInputError(
                f"background must be 3 values in 100..255, got {self.background}"
            )
        object.__setattr__(self, "background", bg)

    @classmethod
    def random(cls, rng: np.random.Generator, strength: float = 1.0) -> DomainShift:
        """Draw a plausible scanner/stain variation.

        Parameters
        ----------
        rng
            Source of randomness.
        strength
            Scales every deviation from the neutral shift (0 gives the neutral shift).

        Returns
        -------
        DomainShift
            A new shift.
        """
        s = float(strength)
        bg = np.clip(np.array([243, 238, 236]) + rng.normal(0, 6 * s, 3), 200, 255)
        return cls(
            hue_deg=float(np.clip(rng.normal(0, 8 * s), -60, 60)),
            intensity=float(np.clip(np.exp(rng.normal(0, 0.2 * s)), 0.3, 2.5)),
            blur_um=float(np.clip(abs(rng.normal(0, 0.35 * s)), 0, 3)),
            noise=float(np.clip(abs(rng.normal(0, 3 * s)), 0, 20)),
            jpeg_quality=int(np.clip(95 - abs(rng.normal(0, 15 * s)), 30, 100)),
            background=(int(bg[0]), int(bg[1]), int(bg[2])),
        )


#: The named scanner/stain settings every detection figure is reported under (segmentation
#: benchmark and tests): one shift at a time, then all at once.
DOMAIN_SHIFT_SETTINGS: dict[str, DomainShift] = {
    "neutral": DomainShift(),
    "bluer (hue +15°)": DomainShift(hue_deg=15),
    "redder (hue -15°)": DomainShift(hue_deg=-15),
    "washed out (x0.7)": DomainShift(intensity=0.7),
    "overstained (x1.6)": DomainShift(intensity=1.6),
    "defocus (blur 0.8 µm)": DomainShift(blur_um=0.8),
    "sensor noise (σ 8)": DomainShift(noise=8),
    "JPEG q40": DomainShift(jpeg_quality=40),
    "blue glass": DomainShift(background=(225, 230, 245)),
    "all at once": DomainShift(hue_deg=-10, intensity=0.85, blur_um=0.4, noise=4, jpeg_quality=60,
                               background=(235, 236, 240)),
}


@dataclass(frozen=True)
class SmearSpec:
    """Everything that decides a synthetic smear; the same spec always gives the same pixels.

    Parameters
    ----------
    size
        Level-0 ``(rows, cols)`` in pixels (an int gives a square).
    mpp
        Micrometres per pixel of level 0 (0.25 for a 40x scan, 0.5 for 20x).
    seed
        Seed of every random choice.
    kind
        ``"blood"`` (peripheral blood) or ``"marrow"`` (bone-marrow aspirate: more white cells,
        more erythroblasts and immature granulocytes).
    subtype
        Slide-level genetic subtype from :data:`hemascope.classes.AML_SUBTYPES`; anything but
        ``"control"`` makes blasts frequent and gives them that subtype's morphology.
    class_mix
        Relative frequency of each white-cell class (keys from
        :data:`~hemascope.synthetic.spec.WBC_CLASSES`; missing classes get 0). ``None`` uses the
        default differential of ``kind`` and ``subtype``.
    wbc_density
        White cells per mm² of smear; ``None`` uses the default of ``kind``.
    rbc_density
        Red-cell coverage relative to a normal monolayer (1.0); ``None`` uses the default of ``kind``.
    platelet_ratio
        Platelets per red cell.
    glass_margin
        Fraction of the shorter side left as bare glass around the smear (0 fills the image).
    shift
        Stain and scanner variation.
    """

    size: tuple[int, int] = (2048, 2048)
    mpp: float = 0.5
    seed: int = 0
    kind: str = "blood"
    subtype: str = "control"
    class_mix: Mapping[str, float] | None = None
    wbc_density: float | None = None
    rbc_density: float | None = None
    platelet_ratio: float = 0.05
    glass_margin: float = 0.04
    shift: DomainShift = field(default_factory=DomainShift)

    def __post_init__(self) -> None:
        given = (self.size, self.size) if isinstance(self.size, int | np.integer) else self.size
        size = tuple(int(v) for v in given)
        if len(size) != 2 or min(size) < 64:
            raise InvalidInputError(f"size must be (rows, cols) of at least 64 px, got {self.size}")
        object.__setattr__(self, "size", size)
        if not (MPP_RANGE[0] <= float(self.mpp) <= MPP_RANGE[1]):
            raise InvalidInputError(f"mpp must be in {MPP_RANGE}, got {self.mpp}")
        object.__setattr__(self, "mpp", float(self.mpp))
        if not (0 <= int(self.seed) < 2**63):
            raise InvalidInputError(f"seed must be a non-negative integer, got {self.seed}")
        object.__setattr__(self, "seed", int(self.seed))
        if self.kind not in SMEAR_KINDS:
            raise InvalidInputError(f"kind must be one of {SMEAR_KINDS}, got {self.kind!r}")
        if self.subtype not in AML_SUBTYPES:
            raise InvalidInputError(f"subtype must be one of {AML_SUBTYPES}, got {self.subtype!r}")
        if self.class_mix is not None:
            unknown = set(self.class_mix) - set(WBC_CLASSES)
            if unknown:
                raise InvalidInputError(
                    f"class_mix has unknown classes {sorted(unknown)}; known: {WBC_CLASSES}"
                )
            values = [float(v) for v in self.class_mix.values()]
            if any(v < 0 or not math.isfinite(v) for v in values) or sum(values) <= 0:
                raise InvalidInputError("class_mix needs non-negative weights with a positive sum")
            object.__setattr__(self, "class_mix", {k: float(v) for k, v in self.class_mix.items()})
        for name, hi in (("wbc_density", 5000.0), ("rbc_density", 3.0)):
            value = getattr(self, name)
            if value is not None and not (0.0 <= float(value) <= hi):
                raise InvalidInputError(f"{name} must be in [0, {hi}], got {value}")
        if not (0.0 <= self.platelet_ratio <= 1.0):
            raise InvalidInputError(f"platelet_ratio must be in [0, 1], got {self.platelet_ratio}")
        if not (0.0 <= self.glass_margin < 0.45):
            raise InvalidInputError(f"glass_margin must be in [0, 0.45), got {self.glass_margin}")
        if not isinstance(self.shift, DomainShift):
            raise InvalidInputError("shift must be a DomainShift")

    # --- resolved defaults ----------------------------------------------------------------
    def resolved_class_mix(self) -> dict[str, float]:
        """White-cell class probabilities (summing to 1) after applying kind and subtype defaults."""
        if self.class_mix is not None:
            mix = {c: float(self.class_mix.get(c, 0.0)) for c in WBC_CLASSES}
        else:
            mix = dict(_BLOOD_MIX if self.kind == "blood" else _MARROW_MIX)
            if self.subtype == "CBFB::MYH11":
                mix["eosinophil"] *= 4.0
                mix["monocyte"] *= 3.0
            if self.subtype != "control":
                blast = _AML_BLAST_FRACTION[self.kind]
                rest = sum(v for c, v in mix.items() if c != "blast")
                mix = {
                    c: (blast if c == "blast" else v * (1 - blast) / rest) for c, v in mix.items()
                }
        total = sum(mix.values())
        return {c: mix.get(c, 0.0) / total for c in WBC_CLASSES}

    @property
    def resolved_wbc_density(self) -> float:
        """White cells per mm² of smear."""
        return float(self.wbc_density if self.wbc_density is not None else _WBC_DENSITY[self.kind])

    @property
    def resolved_rbc_density(self) -> float:
        """Red-cell coverage relative to a normal monolayer."""
        return float(self.rbc_density if self.rbc_density is not None else _RBC_DENSITY[self.kind])

    # --- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the spec (round-trips through :meth:`from_dict`)."""
        d = asdict(self)
        d["size"] = list(self.size)
        d["shift"]["background"] = list(self.shift.background)
        d["class_mix"] = dict(self.class_mix) if self.class_mix is not None else None
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SmearSpec:
        """Rebuild a spec written by :meth:`to_dict`.

        Raises
        ------
        InvalidInputError
            For unknown keys or invalid values.
        """
        data = dict(data)
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise InvalidInputError(f"unknown SmearSpec keys {sorted(unknown)}")
        shift = data.pop("shift", None) or {}
        try:
            shift_obj = DomainShift(
                **{**shift, "background": tuple(shift.get("background", (243, 238, 236)))}
            )
            return cls(
                **{**data, "size": tuple(data.get("size", (2048, 2048))), "shift": shift_obj}
            )
        except TypeError as exc:
            raise InvalidInputError(f"invalid SmearSpec: {exc}") from exc

    def replace(self, **changes: Any) -> SmearSpec:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)
