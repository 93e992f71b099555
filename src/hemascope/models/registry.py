"""The model registry: find, verify and load models of every kind stored as ``.safetensors`` + JSON card.

One door for cell classifiers and slide-level (bag) models: :func:`list_models` lists cards by
``kind``, :func:`find_card` finds one, :func:`load_model` verifies and builds it (the architecture
named by the card, of its kind) on a device, :func:`save_model` writes one. Nothing is downloaded
unless the user passes a URL.

Where models come from, in the order :func:`load_model` tries them:

1. a URL (``https://``, ``http://`` or ``file://``) of a card (``.json``) or weights file
   (``.safetensors``, with ``sha256=``): downloaded once into the cache directory, hash-checked;
2. a local path to a card or a weights file;
3. a name: the bundled models (``hemascope/models/weights/<name>.json``), then the cache.

The cache directory is ``$HEMASCOPE_CACHE_DIR/models`` when that variable is set, else
``$XDG_CACHE_HOME/hemascope/models`` (``~/.cache/hemascope/models``). Weights are only ever read
with :mod:`safetensors` (never unpickled); a wrong sha256, a malformed file or tensors whose
names or shapes do not fit the card's architecture raise
:class:`~hemascope.errors.ModelIntegrityError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from hemascope.devices import resolve_device
from hemascope.errors import InvalidInputError, ModelIntegrityError, ModelNotFoundError
from hemascope.files import atomic_write_bytes, atomic_write_text, sha256_file
from hemascope.models.architectures import MODEL_KINDS, build_model
from hemascope.models.card import ModelCard
from hemascope.models.mil import build_bag_model

BUNDLED_DIR = Path(__file__).parent / "weights"
_URL_SCHEMES = ("http://", "https://", "file://")


@dataclass
class LoadedModel:
    """A verified network in eval mode together with its card.

    Attributes
    ----------
    module
        The torch module (eval mode, on ``device``).
    card
        Its :class:`~hemascope.models.card.ModelCard`.
    device
        The torch device the module lives on.
    source
        Where the weights were read from.
    """

    module: torch.nn.Module
    card: ModelCard
    device: torch.device
    source: str

    @property
    def classes(self) -> list[str]:
        """Class names in output order."""
        return list(self.card.classes)

    @property
    def label(self) -> str:
        """``name@version (sha256[:12])`` for provenance records."""
        return f"{self.card.name}@{self.card.version} ({self.card.sha256[:12]})"


def cache_dir() -> Path:
    """The directory where downloaded models are cached (see the module docstring)."""
    root = os.environ.get("HEMASCOPE_CACHE_DIR")
    if root:
        return Path(root) / "models"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "hemascope" / "models"


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in MODEL_KINDS:
        raise InvalidInputError(f"unknown model kind {kind!r}; known: {', '.join(MODEL_KINDS)}")


def _card_paths() -> list[Path]:
    paths = sorted(BUNDLED_DIR.glob("*.json"))
    cached = cache_dir()
    if cached.is_dir():
        paths += sorted(cached.glob("*/*.json"))
    return paths


def list_models(kind: str | None = None) -> list[ModelCard]:
    """Cards of every locally available model: bundled first, then cached downloads.

    Parameters
    ----------
    kind
        Only models of this kind: ``"cell"`` (single-cell classifiers) or ``"bag"`` (slide-level
        models over a cell model's embeddings); ``None`` for all.

    Returns
    -------
    list of ModelCard
        One card per model name (a bundled model hides a cached one of the same name); cards
        that do not validate are left out (loading them by name says why).

    Raises
    ------
    InvalidInputError
        ``kind`` is not one of :data:`~hemascope.models.architectures.MODEL_KINDS`.
    """
    _check_kind(kind)
    cards: dict[str, ModelCard] = {}
    for path in _card_paths():
        try:
            card = ModelCard.read(path)
        except ModelIntegrityError:
            continue
        if kind is None or card.kind == kind:
            cards.setdefault(card.name, card)
    return list(cards.values())


def _find_named(name: str, kind: str | None = None) -> Path:
    for path in _card_paths():
        if path.stem == name:
            return path
    known = sorted(c.name for c in list_models(kind))
    what = f"{kind} models" if kind else "models"
    raise ModelNotFoundError(
        f"no model named {name!r}; available {what}: {', '.join(known) or 'none'}"
    )


def _names_weights(path: Path) -> bool:
    """Whether the JSON file ``path`` is a model card (an object naming its ``weights``)."""
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(card, dict) and "weights" in card


def find_card(name_or_path: str | Path, kind: str | None = None) -> Path:
    """The JSON card of a model of any kind: one door for cell and slide (bag) models.

    Parameters
    ----------
    name_or_path
        A registry name (bundled, or cached under :func:`cache_dir`), a ``.json`` card, a
        ``.safetensors`` file with its card beside it, or a folder holding exactly one card.
    kind
        The kind expected (only used to list the alternatives when nothing is found).

    Raises
    ------
    ModelNotFoundError
        Nothing of that name or path exists.
    """
    path = Path(name_or_path).expanduser()
    if path.suffix == ".safetensors":
        path = path.with_suffix(".json")
    if path.suffix == ".json":
        if path.is_file():
            return path
        raise ModelNotFoundError(f"model card not found: {path}")
    if path.is_dir():
        # a training run's folder also holds metrics.json and checkpoint.json: not cards
        cards = [p for p in sorted(path.glob("*.json")) if _names_weights(p)]
        if len(cards) == 1:
            return cards[0]
        raise ModelNotFoundError(
            f"{path}: expected a folder holding one model card, found {len(cards)}"
            + (f" ({', '.join(p.name for p in cards)}): name one" if cards else "")
        )
    return _find_named(str(name_or_path), kind)


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310
            shutil.copyfileobj(resp, out)
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ModelNotFoundError(f"cannot fetch {url}: {exc}") from None


def _fetch_url(url: str, sha256: str | None) -> tuple[Path, ModelCard | None, str | None]:
    """Download a card or weights URL into the cache; returns (weights path, card, expected hash)."""
    cache = cache_dir()
    if url.endswith(".json"):
        card_tmp = cache / "_cards" / hashlib.sha256(url.encode()).hexdigest()[:16] / "card.json"
        _download(url, card_tmp)
        card = ModelCard.read(card_tmp)
        expected = sha256 or card.sha256
        if not expected:
            raise ModelIntegrityError(f"card at {url} pins no sha256; refusing to download weights")
        weights_url = urllib.parse.urljoin(url, card.weights or f"{card.name}.safetensors")
        dest = cache / card.name / (card.weights or f"{card.name}.safetensors")
        if not (dest.is_file() and sha256_file(dest) == expected):
            _download(weights_url, dest)
        card_dest = dest.with_name(f"{card.name}.json")
        atomic_write_text(card_dest, card.to_json())
        return dest, card, expected
    if not sha256:
        raise ModelIntegrityError(f"loading weights from {url} needs a pinned sha256=")
    name = Path(urllib.parse.urlparse(url).path).name or "model.safetensors"
    dest = cache / sha256[:16] / name
    if not (dest.is_file() and sha256_file(dest) == sha256):
        _download(url, dest)
    return dest, None, sha256


def _resolve(
    name_or_path: str | Path, sha256: str | None, kind: str | None
) -> tuple[Path, ModelCard | None, str | None]:
    text = str(name_or_path)
    if text.startswith(_URL_SCHEMES):
        return _fetch_url(text, sha256)
    path = Path(text).expanduser()
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise ModelNotFoundError(f"model file not found: {path}")
        sibling = path.with_suffix(".json")
        card = ModelCard.read(sibling) if sibling.is_file() else None
        return path, card, sha256 or (card.sha256 if card else None) or None
    card_path = find_card(path if path.suffix == ".json" or path.is_dir() else text, kind)
    card = ModelCard.read(card_path)
    weights = card_path.parent / (card.weights or f"{card.name}.safetensors")
    if not weights.is_file():
        raise ModelNotFoundError(
            f"model {card.name!r}: card {card_path} points to missing weights {weights.name}"
        )
    return weights, card, sha256 or card.sha256 or None


def build_for_card(card: ModelCard) -> torch.nn.Module:
    """An untrained network of the card's kind and architecture (see ``ARCHITECTURES_BY_KIND``).

    Raises
    ------
    ModelIntegrityError
        An unknown architecture or parameters it does not take.
    """
    if card.kind != "bag":
        return build_model(card.architecture, len(card.classes), card.arch_params)
    try:
        return build_bag_model(
            card.architecture, card.embedding_dim, len(card.classes), **card.arch_params
        )
    except (InvalidInputError, TypeError) as exc:
        raise ModelIntegrityError(f"bag card {card.name!r} cannot be built: {exc}") from None


def _card_from_metadata(path: Path) -> ModelCard:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ModelIntegrityError(f"{path} is not a valid safetensors file: {exc}") from None
    if "card" not in meta:
        raise ModelIntegrityError(f"{path} has no model card (no sibling .json, no metadata)")
    try:
        data = json.loads(meta["card"])
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelIntegrityError(f"{path}: the model card in its metadata is not valid JSON ({exc})") from None
    return ModelCard.from_dict(data)


def load_model(
    name_or_path: str | Path,
    device: str | torch.device = "cpu",
    *,
    sha256: str | None = None,
    kind: str | None = "cell",
) -> LoadedModel:
    """Find, verify and load a model of any kind.

    Parameters
    ----------
    name_or_path
        A registry name (``"wbc"``), a path to a card or weights file, or a URL (see the module
        docstring).
    device
        Torch device for the module (``"auto"``, ``"cpu"``, ``"cuda"``, ...; see
        :func:`hemascope.devices.resolve_device`).
    sha256
        Expected hex digest of the weights; overrides the card's (required for weights URLs).
    kind
        The kind the caller needs (``"cell"`` by default, ``"bag"``); ``None`` accepts any.

    Returns
    -------
    LoadedModel
        The module in eval mode and its card.

    Raises
    ------
    ModelNotFoundError
        Unknown name, missing file or unreachable URL.
    ModelIntegrityError
        Wrong hash, malformed file, tensors that do not fit the architecture, or a model of
        another kind than ``kind``.
    """
    _check_kind(kind)
    weights, card, expected = _resolve(name_or_path, sha256, kind)
    if expected:
        actual = sha256_file(weights)
        if actual != expected:
            raise ModelIntegrityError(
                f"sha256 of {weights.name} is {actual[:16]}..., expected {expected[:16]}...; "
                "the file is corrupt or not the model the card describes"
            )
    if card is None:
        card = _card_from_metadata(weights)
    if kind is not None and card.kind != kind:
        raise ModelIntegrityError(
            f"{card.name!r} is a {card.kind} model, not a {kind} model; "
            f"see `hemascope models` for the {kind} models"
        )
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ModelIntegrityError(f"{weights} is not a valid safetensors file: {exc}") from None
    module = build_for_card(card)
    expected_shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got_shapes = {k: tuple(v.shape) for k, v in state.items()}
    if expected_shapes != got_shapes:
        bad = sorted(set(expected_shapes) ^ set(got_shapes)) or sorted(
            k for k in expected_shapes if expected_shapes[k] != got_shapes[k]
        )
        raise ModelIntegrityError(
            f"weights {weights.name} do not fit {card.architecture} with {len(card.classes)} "
            f"classes (mismatched tensors: {', '.join(bad[:4])})"
        )
    module.load_state_dict(state)
    dev = resolve_device(device)
    module.to(dev).eval()
    if dev.type == "cpu":  # convolutions 1.3-1.6x faster on CPU, same outputs (BENCHMARKS.md, session 30)
        module.to(memory_format=torch.channels_last)
    if not card.sha256:
        card.sha256 = sha256_file(weights)
    return LoadedModel(module=module, card=card, device=dev, source=str(weights))


def save_model(module: torch.nn.Module, card: ModelCard, directory: str | Path) -> Path:
    """Write ``<name>.safetensors`` and ``<name>.json`` (with the weights' sha256) into a directory.

    Any kind of model. Both files are written atomically (:mod:`hemascope.files`), so a crash
    never leaves a half-written model. A cell card is also embedded in the safetensors metadata.

    Parameters
    ----------
    module
        The trained network (its ``state_dict`` is saved, moved to CPU).
    card
        The card; ``weights`` and ``sha256`` are filled in here.
    directory
        Output directory (created if needed).

    Returns
    -------
    pathlib.Path
        The path of the written card.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    card.weights = f"{card.name}.safetensors"
    card.sha256 = ""
    state = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    metadata = {"card": card.to_json(), "format": "pt"} if card.kind == "cell" else None
    data = save(state, metadata=metadata)
    atomic_write_bytes(directory / card.weights, data)
    card.sha256 = hashlib.sha256(data).hexdigest()
    card_path = directory / f"{card.name}.json"
    atomic_write_text(card_path, card.to_json() + "\n")
    return card_path
