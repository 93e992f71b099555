"""The model card: everything needed to use a set of weights correctly, stored as JSON.

A card names the architecture and its parameters, the classes in output order, the input crop
(``input_size`` pixels at ``mpp`` µm/px, so a cell is always seen at the same physical size), the
normalisation, the calibration temperature, where the training data came from and under which
licence, the measured metrics, and the sha256 of the weights file it belongs to.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hemascope.errors import ModelIntegrityError

#: Default per-channel normalisation of RGB values scaled to [0, 1].
DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.25, 0.25, 0.25)


@dataclass
class ModelCard:
    """Metadata of one model (see the module docstring).

    Attributes
    ----------
    name, version
        Registry name (e.g. ``"wbc"``) and version string.
    classes
        Class names in output order.
    input_size
        Side of the square input crop in pixels.
    mpp
        Micrometres per pixel of the input crop.
    architecture, arch_params
        Network name in :data:`hemascope.models.architectures.ARCHITECTURES` and its parameters.
    mean, std
        Per-channel normalisation of RGB in [0, 1].
    temperature
        Calibration temperature (logits are divided by it before the softmax).
    weights
        File name of the ``.safetensors`` weights, relative to the card.
    sha256
        Hex digest of the weights file.
    training_data, licence, metrics, description
        Provenance and measured performance.
    preprocess
        Input normalisation shared by training and inference, e.g.
        ``{"white_balance": "background", "pad": "background"}`` (see
        :mod:`hemascope.classify.normalize`); empty for older models.
    reject_classes
        Outputs that mean "not a white cell of the differential" (e.g. ``smudge``): a cell whose
        top class is one of them is reported as ``unclassified``.
    domain_reference
        Calibration of the domain-shift guard (:mod:`hemascope.classify.shift`), e.g.
        ``{"threshold": 0.5, "layers": 7, "calibration": "..."}``.
    """

    name: str
    version: str
    classes: list[str]
    input_size: int
    mpp: float
    architecture: str = "cellnet"
    arch_params: dict[str, Any] = field(default_factory=dict)
    mean: list[float] = field(default_factory=lambda: list(DEFAULT_MEAN))
    std: list[float] = field(default_factory=lambda: list(DEFAULT_STD))
    temperature: float = 1.0
    weights: str = ""
    sha256: str = ""
    training_data: list[str] = field(default_factory=list)
    licence: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    kind: str = (
        "cell"  # "cell" (single-cell crops) or "bag" (slide-level model over cell embeddings)
    )
    embedding_model: str = ""  # for bag models: the cell model whose embeddings they read
    preprocess: dict[str, Any] = field(default_factory=dict)
    reject_classes: list[str] = field(default_factory=list)
    domain_reference: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ModelIntegrityError(f"card {self.name!r}: classes must be >= 2 unique names")
        if self.input_size < 8 or self.mpp <= 0:
            raise ModelIntegrityError(f"card {self.name!r}: bad input_size/mpp")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ModelIntegrityError(f"card {self.name!r}: mean/std need 3 positive values")
        if self.temperature <= 0:
            raise ModelIntegrityError(f"card {self.name!r}: temperature must be positive")
        unknown = sorted(set(self.reject_classes) - set(self.classes))
        if unknown:
            raise ModelIntegrityError(
                f"card {self.name!r}: reject classes {unknown} not in classes"
            )

    @property
    def cell_classes(self) -> list[str]:
        """The classes a cell can be reported as: :attr:`classes` without the reject outputs."""
        return [c for c in self.classes if c not in self.reject_classes]

    @property
    def field_um(self) -> float:
        """Side of the input crop in micrometres."""
        return self.input_size * self.mpp

    def to_dict(self) -> dict[str, Any]:
        """The card as a JSON-able dict."""
        return asdict(self)

    def to_json(self) -> str:
        """The card as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Build a card from a dict, rejecting missing required keys; unknown keys are ignored.

        Types, ranges and finiteness are checked first
        (:func:`hemascope.models.card_validation.validate_card_dict`).
        """
        from hemascope.models.card_validation import validate_card_dict

        validate_card_dict(data)
        known = {f.name for f in fields(cls)}
        missing = {"name", "version", "classes", "input_size", "mpp"} - set(data)
        if missing:
            raise ModelIntegrityError(f"model card lacks {sorted(missing)}")
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise ModelIntegrityError(f"invalid model card: {exc}") from None

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """Read a card from a JSON file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ModelIntegrityError(f"cannot read model card {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ModelIntegrityError(f"model card {path} is not a JSON object")
        return cls.from_dict(data)
