"""Bag (slide-level) models on disk: a ``.safetensors`` file plus a JSON card, as cell models.

A bag model consumes the embeddings of one particular cell model, so its card records that model's
name, version, sha256 and embedding size (and its crop ``input_size``/``mpp``: the scale at which
the cells were seen). It also records which cells form the bag (``instances``: ``"blast"`` or
``"all"``), the abstention rule (``min_instances``), the calibration temperature and whether the
model is a synthetic demo. Weights are never unpickled: safetensors only, hash-checked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.errors import InvalidInputError, ModelIntegrityError, ModelNotFoundError
from hemascope.files import atomic_write_bytes
from hemascope.models.registry import find_card, list_models, sha256_file
from hemascope.slide.bag import parse_instances
from hemascope.slide.mil import CARD_ARCHITECTURES, build_bag_model

#: The usual selections of the cells of a slide that go into the bag; any cell classes joined
#: with ``+`` are accepted too (``"blast+ig"``, see :func:`hemascope.slide.bag.parse_instances`).
INSTANCE_SELECTIONS: tuple[str, ...] = ("blast", "all", "blast+ig")

DEMO_LABEL = "SYNTHETIC/DEMO"


@dataclass
class BagModelCard:
    """Metadata of one bag model (see the module docstring).

    Attributes
    ----------
    name, version : str
        Registry name (e.g. ``"aml-subtype-demo"``) and version.
    classes : list of str
        Bag classes in output order.
    architecture : str
        One of :data:`hemascope.slide.mil.CARD_ARCHITECTURES`.
    arch_params : dict
        Keyword arguments of the architecture (``hidden``, ``dropout``, ...).
    embedding_model, embedding_version, embedding_sha256 : str
        The cell model whose embeddings the bag model consumes.
    embedding_dim : int
        Size of one cell embedding.
    input_size, mpp : int, float
        Crop size and µm/px of that cell model (the scale cells are seen at).
    instances : str
        ``"blast"`` (only cells classified as blasts form the bag), ``"all"``, or cell classes
        joined with ``+`` (``"blast+ig"``).
    min_instances : int
        Fewer cells than this in the bag → abstain.
    temperature : float
        Calibration temperature applied to the bag logits.
    demo : bool
        True for models trained on synthetic data only.
    weights, sha256 : str
        Weights file name (next to the card) and its sha256.
    training_data, licence, metrics, description
        Provenance and measured performance.
    kind : str
        Always ``"bag"`` (tells bag cards from cell-model cards).
    """

    name: str
    version: str
    classes: list[str]
    architecture: str
    embedding_model: str
    embedding_dim: int
    input_size: int
    mpp: float
    embedding_version: str = ""
    embedding_sha256: str = ""
    arch_params: dict[str, Any] = field(default_factory=dict)
    instances: str = "blast"
    min_instances: int = 10
    temperature: float = 1.0
    demo: bool = False
    weights: str = ""
    sha256: str = ""
    training_data: list[str] = field(default_factory=list)
    licence: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    kind: str = "bag"

    def __post_init__(self) -> None:
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ModelIntegrityError(f"bag card {self.name!r}: classes must be >= 2 unique names")
        if self.architecture not in CARD_ARCHITECTURES:
            raise ModelIntegrityError(
                f"bag card {self.name!r}: unknown architecture {self.architecture!r}"
            )
        try:
            parse_instances(self.instances)
        except InvalidInputError as exc:
            raise ModelIntegrityError(f"bag card {self.name!r}: {exc}") from None
        if self.embedding_dim <= 0 or self.min_instances < 1 or self.temperature <= 0:
            raise ModelIntegrityError(
                f"bag card {self.name!r}: bad embedding_dim/min_instances/temperature"
            )

    @property
    def display_name(self) -> str:
        """``name vversion``, with ``(synthetic/demo)`` for demo models."""
        text = f"{self.name} v{self.version}"
        return f"{text} ({DEMO_LABEL})" if self.demo else text

    @property
    def caption(self) -> str:
        """The line every slide-level figure carries: model, version, demo flag, research use."""
        return f"{self.display_name} · {RESEARCH_USE_ONLY}"

    def to_dict(self) -> dict[str, Any]:
        """The card as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BagModelCard:
        """Build a card from a dict; unknown keys are ignored, missing required keys refused."""
        if data.get("kind", "bag") != "bag":
            raise ModelIntegrityError(f"card {data.get('name')!r} is not a bag model card")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ModelIntegrityError(f"invalid bag model card: {exc}") from None


@dataclass
class BagModel:
    """A loaded bag model: the torch module (eval mode) and its card."""

    module: Any
    card: BagModelCard

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated class probabilities ``(C,)`` and cell weights ``(N, C)`` of one bag.

        Parameters
        ----------
        features : numpy.ndarray
            Cell embeddings ``(N, embedding_dim)`` of the bag, ``N >= 1``.

        Returns
        -------
        tuple of numpy.ndarray
            Probabilities and per-cell, per-class weights (attention for MIL models).
        """
        import torch

        x = torch.as_tensor(np.asarray(features, dtype=np.float32))[None]
        with torch.no_grad():
            logits, weights = self.module(x)
            probs = torch.softmax(logits / self.card.temperature, dim=-1)
        return probs[0].numpy().astype(np.float64), weights[0].numpy()


def save_bag_model(module: Any, card: BagModelCard, directory: str | Path) -> Path:
    """Write ``<name>.safetensors`` and ``<name>.json`` (atomically) and return the card path.

    Parameters
    ----------
    module : torch.nn.Module
        The trained bag classifier.
    card : BagModelCard
        Its card; ``weights`` and ``sha256`` are filled in here.
    directory : str or Path
        Destination folder (created if missing).

    Returns
    -------
    Path
        Path of the written JSON card.
    """
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    data = save(state)
    weights = directory / f"{card.name}.safetensors"
    atomic_write_bytes(weights, data)
    card.weights = weights.name
    card.sha256 = hashlib.sha256(data).hexdigest()
    card_path = directory / f"{card.name}.json"
    atomic_write_bytes(card_path, json.dumps(card.to_dict(), indent=2).encode("utf-8"))
    return card_path


def load_bag_model(name_or_path: str | Path) -> BagModel:
    """Load a bundled bag model by name, or one from a card/weights path, checking its hash.

    Parameters
    ----------
    name_or_path : str or Path
        A bundled name (see :func:`list_bag_models`), a ``.json`` card, a ``.safetensors`` file
        with its card beside it, or a folder holding one card.

    Returns
    -------
    BagModel
        Module in eval mode and card.

    Raises
    ------
    ModelNotFoundError
        If nothing of that name or path exists.
    ModelIntegrityError
        If the card is invalid, the hash differs or tensors do not fit the architecture.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    card_path = find_card(name_or_path, kind="bag")
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelIntegrityError(f"cannot read bag model card {card_path}: {exc}") from None
    card = BagModelCard.from_dict(data)
    weights = card_path.parent / (card.weights or f"{card.name}.safetensors")
    if not weights.exists():
        raise ModelNotFoundError(f"weights {weights} of bag model {card.name!r} are missing")
    if card.sha256 and sha256_file(weights) != card.sha256:
        raise ModelIntegrityError(f"weights {weights.name} do not match the sha256 in their card")
    module = build_bag_model(
        card.architecture, card.embedding_dim, len(card.classes), **card.arch_params
    )
    try:
        module.load_state_dict(load_file(str(weights)), strict=True)
    except (RuntimeError, SafetensorError) as exc:
        raise ModelIntegrityError(f"weights of {card.name!r} do not fit its card: {exc}") from None
    module.eval()
    return BagModel(module=module, card=card)


def list_bag_models() -> list[str]:
    """Names of the available bag models (the registry's cards of ``kind`` ``"bag"``)."""
    return [card.name for card in list_models(kind="bag")]
