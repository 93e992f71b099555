"""Settings of a segmentation run (:class:`SegmentSettings`), plain values only (picklable)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from hemascope.errors import InvalidInputError
from hemascope.segment.classical_params import ClassicalParams

SEGMENTERS = ("classical", "learned", "cellpose", "auto")


@dataclass(frozen=True)
class SegmentSettings:
    """How to find and outline white cells (sizes in µm).

    Attributes
    ----------
    segmenter
        ``"classical"`` (default, offline), ``"learned"`` (the bundled small network, offline),
        ``"cellpose"`` or ``"auto"`` (Cellpose only when its weights are present locally, else
        classical).
    model
        Cellpose model name (looked up in ``CELLPOSE_LOCAL_MODELS_PATH`` or ``~/.cellpose/models``)
        or a local file path; default ``"cpsam"``. For ``"learned"``: another weights file
        (default: the bundled one).
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"`` (Cellpose only).
    batch_size
        Crops per Cellpose batch.
    min_diameter_um, max_diameter_um
        Smallest and largest white-cell diameter; smaller stained blobs (platelets) are no
        candidates, and the overlap between regions is ``max_diameter_um``.
    candidate_mpp
        µm/px at which candidates are searched (a reduced resolution).
    candidate_min_od
        Lowest nuclear-stain optical density (red channel) of a candidate nucleus.
    classical
        Parameters of the classical backend.
    """

    segmenter: str = "classical"
    model: str | None = None
    device: str = "cpu"
    batch_size: int = 16
    min_diameter_um: float = 5.0
    max_diameter_um: float = 25.0
    candidate_mpp: float = 1.0
    candidate_min_od: float = 0.15
    classical: ClassicalParams = field(default_factory=ClassicalParams)

    def __post_init__(self) -> None:
        if self.segmenter not in SEGMENTERS:
            raise InvalidInputError(f"segmenter must be one of {SEGMENTERS}, got {self.segmenter!r}")
        if not 0 < self.min_diameter_um < self.max_diameter_um:
            raise InvalidInputError(
                f"need 0 < min_diameter_um < max_diameter_um, got {self.min_diameter_um}, {self.max_diameter_um}"
            )
        if self.candidate_mpp <= 0 or self.batch_size < 1:
            raise InvalidInputError("candidate_mpp must be > 0 and batch_size >= 1")

    @classmethod
    def from_any(cls, settings: SegmentSettings | Mapping[str, Any] | None = None, **overrides: Any) -> SegmentSettings:
        """Build settings from a :class:`SegmentSettings`, a mapping (e.g. a TOML table) and keywords.

        Parameters
        ----------
        settings
            Base settings; a mapping may hold any field name, and classical parameters either as a
            ``classical`` mapping or as top-level keys named like :class:`ClassicalParams` fields.
        **overrides
            Field values that replace those of ``settings``.

        Returns
        -------
        SegmentSettings
            Validated settings.

        Raises
        ------
        InvalidInputError
            For an unknown key or a bad value.
        """
        base = settings if isinstance(settings, SegmentSettings) else cls()
        values: dict[str, Any] = {}
        if isinstance(settings, Mapping):
            values.update(settings)
        values.update(overrides)
        own = {f.name for f in fields(cls)}
        classical_names = {f.name for f in fields(ClassicalParams)}
        classical = dict(values.pop("classical", None) or {})
        for key in list(values):
            if key in classical_names and key not in own:
                classical[key] = values.pop(key)
        unknown = set(values) - own
        unknown |= set(classical) - classical_names
        if unknown:
            raise InvalidInputError(f"unknown segmentation settings {sorted(unknown)}")
        if classical:
            values["classical"] = replace(base.classical, **classical)
        values = {k: v for k, v in values.items() if v is not None or k == "model"}
        return replace(base, **values)
