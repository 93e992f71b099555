"""Cell classification models: compact CNN architectures and a safe registry.

Every model is a ``.safetensors`` weights file plus a JSON :class:`ModelCard`. Use
:func:`list_models` to see what is available and :func:`load_model` to get a verified network.
"""

from hemascope.models.architectures import ARCHITECTURES, CellNet, build_model
from hemascope.models.card import ModelCard
from hemascope.models.registry import (
    BUNDLED_DIR,
    LoadedModel,
    cache_dir,
    find_card,
    list_models,
    load_model,
    save_model,
    sha256_file,
)

__all__ = [
    "ARCHITECTURES",
    "BUNDLED_DIR",
    "CellNet",
    "LoadedModel",
    "ModelCard",
    "build_model",
    "cache_dir",
    "find_card",
    "list_models",
    "load_model",
    "save_model",
    "sha256_file",
]
