"""The model card: everything needed to use a set of weights correctly, stored as JSON.

One schema for every model kind (``kind``: ``"cell"`` or ``"bag"``, see
:data:`hemascope.models.architectures.ARCHITECTURES_BY_KIND`). A card names the architecture and
its parameters, the classes in output order, the input crop (``input_size`` pixels at ``mpp``
µm/px, so a cell is always seen at the same physical size), the calibration temperature, where the
training data came from and under which licence, the measured metrics, and the sha256 of the
weights file it belongs to. A cell card adds the input normalisation; a bag (slide-level) card
adds the cell model whose embeddings it reads (``embedding_model``, ``embedding_version``, and
``embedding_sha256``: that model's pinned weights), the embedding size, which cells form the bag
and the abstention rule.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.errors import InvalidInputError, ModelIntegrityError
from hemascope.models.architectures import ARCHITECTURES_BY_KIND, MODEL_KINDS

#: Default per-channel normalisation of RGB values scaled to [0, 1].
DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.25, 0.25, 0.25)

#: How demo (synthetic-data) models are named wherever they are shown.
DEMO_LABEL = "SYNTHETIC/DEMO"

#: The fields that only one kind of card uses; :meth:`ModelCard.to_dict` leaves out the others'.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "cell": ("mean", "std", "preprocess", "reject_classes"),
    "bag": ("embedding_version", "embedding_sha256", "embedding_dim", "instances",
            "min_instances", "demo", "question"),
}

#: Keys a card of each kind must hold.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "cell": ("name", "version", "classes", "input_size", "mpp"),
    "bag": ("name", "version", "classes", "input_size", "mpp", "architecture",
            "embedding_model", "embedding_dim"),
}


def parse_instances(instances: str) -> tuple[str, ...] | None:
    """The cell classes a bag selection keeps, or None for every cell.

    Parameters
    ----------
    instances : str
        ``"all"`` (every cell), ``"blast"``, or several cell classes joined with ``+``
        (e.g. ``"blast+ig"``: cells the cell model calls blast or immature granulocyte).

    Returns
    -------
    tuple of str or None
        The classes, in the order given; None for ``"all"``.

    Raises
    ------
    InvalidInputError
        On an empty selection or an empty class name.
    """
    text = str(instances).strip()
    if text == "all":
        return None
    classes = tuple(part.strip() for part in text.split("+"))
    if not text or any(not c for c in classes):
        raise InvalidInputError(
            f"instances must be 'all' or cell classes joined with '+' (e.g. 'blast+ig'), "
            f"got {instances!r}"
        )
    return classes


def card_kind(data: dict[str, Any]) -> str:
    """The kind of a card's JSON; cards written before ``kind`` existed are told by their fields.

    A card without ``kind`` that records an ``embedding_dim`` was written by the old bag-model
    saver and is read as ``"bag"``; any other is a cell model.
    """
    kind = data.get("kind")
    if kind:
        return str(kind)
    return "bag" if "embedding_dim" in data else "cell"


@dataclass
class ModelCard:
    """Metadata of one model of any kind (see the module docstring).

    Attributes
    ----------
    name, version
        Registry name (e.g. ``"wbc"``) and version string.
    classes
        Class names in output order.
    input_size
        Side of the square input crop in pixels (for a bag model: its cell model's).
    mpp
        Micrometres per pixel of the input crop (for a bag model: its cell model's).
    architecture, arch_params
        Network name (one of ``ARCHITECTURES_BY_KIND[kind]``) and its parameters.
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
        What the training data looked like, for the guards that abstain on data unlike it. Cell
        models: the domain-shift guard (:mod:`hemascope.classify.shift`), e.g.
        ``{"threshold": 0.5, "layers": 7, "calibration": "..."}``. Grouped bag models:
        ``{"min_group_shares": [0.035, 0.19], "max_bag_distance": 2.4, "calibration": "..."}``,
        the lowest share of each group's cells a bag may have and how far its standardised bag
        vector may lie from the training bags' (:func:`hemascope.slide.subtype.unlike_training_bags`).
    kind
        ``"cell"`` (single-cell crops) or ``"bag"`` (slide-level model over cell embeddings).
    embedding_model, embedding_version, embedding_sha256
        Bag models: the cell model whose embeddings they read, pinned by its weights' sha256.
    embedding_dim
        Bag models: size of one cell embedding.
    instances
        Bag models: ``"blast"`` (only cells classified as blasts form the bag), ``"all"``, or cell
        classes joined with ``+`` (``"blast+ig"``, see :func:`parse_instances`).
    min_instances
        Bag models: fewer cells than this in the bag → abstain.
    demo
        True for models trained on synthetic data only (shown as ``SYNTHETIC/DEMO``).
    question
        Bag models: what the model answers and what it takes for granted, shown beside every
        answer (e.g. "APL or another AML, for a patient known to have AML").
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
    kind: str = "cell"
    embedding_model: str = ""
    preprocess: dict[str, Any] = field(default_factory=dict)
    reject_classes: list[str] = field(default_factory=list)
    domain_reference: dict[str, Any] = field(default_factory=dict)
    embedding_version: str = ""
    embedding_sha256: str = ""
    embedding_dim: int = 0
    instances: str = "blast"
    min_instances: int = 10
    demo: bool = False
    question: str = ""

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ModelIntegrityError(
                f"card {self.name!r}: unknown kind {self.kind!r}; known: {', '.join(MODEL_KINDS)}"
            )
        if self.kind == "bag":
            self._check_bag()
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

    def _check_bag(self) -> None:
        if self.architecture not in ARCHITECTURES_BY_KIND["bag"]:
            raise ModelIntegrityError(
                f"bag card {self.name!r}: unknown architecture {self.architecture!r}; known: "
                f"{', '.join(ARCHITECTURES_BY_KIND['bag'])}"
            )
        try:
            parse_instances(self.instances)
        except InvalidInputError as exc:
            raise ModelIntegrityError(f"bag card {self.name!r}: {exc}") from None
        if self.embedding_dim <= 0 or self.min_instances < 1 or not self.embedding_model:
            raise ModelIntegrityError(
                f"bag card {self.name!r}: needs an embedding_model, embedding_dim > 0 and "
                "min_instances >= 1"
            )

    @property
    def display_name(self) -> str:
        """``name vversion``, with ``(SYNTHETIC/DEMO)`` for demo models."""
        text = f"{self.name} v{self.version}"
        return f"{text} ({DEMO_LABEL})" if self.demo else text

    @property
    def caption(self) -> str:
        """The line every slide-level figure carries: model, version, demo flag, research use."""
        return f"{self.display_name} · {RESEARCH_USE_ONLY}"

    @property
    def cell_classes(self) -> list[str]:
        """The classes a cell can be reported as: :attr:`classes` without the reject outputs."""
        return [c for c in self.classes if c not in self.reject_classes]

    @property
    def field_um(self) -> float:
        """Side of the input crop in micrometres."""
        return self.input_size * self.mpp

    def to_dict(self) -> dict[str, Any]:
        """The card as a JSON-able dict, without the fields only the other kinds use."""
        other = {f for kind, names in KIND_FIELDS.items() if kind != self.kind for f in names}
        return {k: v for k, v in asdict(self).items() if k not in other}

    def to_json(self) -> str:
        """The card as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Build a card from a dict, rejecting missing required keys; unknown keys are ignored.

        Types, ranges and finiteness are checked first
        (:func:`hemascope.models.card_validation.validate_card_dict`). A card without ``kind``
        (written before bag and cell cards shared this schema) gets the kind its fields say
        (:func:`card_kind`).
        """
        from hemascope.models.card_validation import validate_card_dict

        validate_card_dict(data)
        kind = card_kind(data)
        known = {f.name for f in fields(cls)}
        missing = set(REQUIRED_FIELDS.get(kind, REQUIRED_FIELDS["cell"])) - set(data)
        if missing:
            raise ModelIntegrityError(f"{kind} model card lacks {sorted(missing)}")
        try:
            return cls(**{**{k: v for k, v in data.items() if k in known}, "kind": kind})
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
