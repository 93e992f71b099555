"""Models of every kind (cell classifiers, slide-level bag models): architectures and one registry.

Every model is a ``.safetensors`` weights file plus a JSON :class:`ModelCard` whose ``kind`` says
which it is. Use :func:`list_models` (``kind=``) to see what is available and :func:`load_model`
to get a verified network.
"""

from hemascope.models.architectures import (
    ARCHITECTURES,
    ARCHITECTURES_BY_KIND,
    MODEL_KINDS,
    CellNet,
    build_model,
)
from hemascope.models.card import ModelCard
from hemascope.models.registry import (
    BUNDLED_DIR,
    LoadedModel,
    build_for_card,
    cache_dir,
    find_card,
    list_models,
    load_model,
    save_model,
    sha256_file,
)

__all__ = [
    "ARCHITECTURES",
    "ARCHITECTURES_BY_KIND",
    "BUNDLED_DIR",
    "MODEL_KINDS",
    "CellNet",
    "LoadedModel",
    "ModelCard",
    "build_for_card",
    "build_model",
    "cache_dir",
    "find_card",
    "list_models",
    "load_model",
    "save_model",
    "sha256_file",
]
