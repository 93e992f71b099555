"""Type and range checks of a model card's JSON before a :class:`ModelCard` is built from it.

A card comes from a file the user may have edited or downloaded: wrong types (an integer
``sha256``), non-finite numbers (``NaN`` µm/px or temperature), negative layer widths or absurdly
deep nesting must give :class:`~hemascope.errors.ModelIntegrityError`, never a ``TypeError`` from
deep inside torch. :func:`validate_card_dict` is called by ``ModelCard.from_dict``.
"""

from __future__ import annotations

import math
from typing import Any

from hemascope.errors import ModelIntegrityError

MAX_DEPTH = 6
"""Deepest nesting of lists/objects accepted anywhere in a card."""

MAX_INT_PARAM = 100_000
"""Largest integer an architecture parameter may hold (a width of 10^9 would exhaust memory)."""

_STRINGS = ("name", "version", "architecture", "weights", "sha256", "licence", "description",
            "kind", "embedding_model", "embedding_version", "embedding_sha256", "instances")

_HEX = frozenset("0123456789abcdefABCDEF")


def _fail(field: str, wanted: str, value: Any) -> ModelIntegrityError:
    return ModelIntegrityError(f"model card: {field!r} must be {wanted}, got {str(value)[:60]!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite_positive(data: dict[str, Any], field: str) -> None:
    if field in data:
        value = data[field]
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            raise _fail(field, "a finite positive number", value)


def _depth(value: Any, limit: int, level: int = 0) -> None:
    if level > limit:
        raise ModelIntegrityError(f"model card: nested more than {limit} levels deep")
    if isinstance(value, dict):
        for item in value.values():
            _depth(item, limit, level + 1)
    elif isinstance(value, list):
        for item in value:
            _depth(item, limit, level + 1)


def _check_params(value: Any, field: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _check_params(item, f"{field}.{key}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, int) and not isinstance(item, bool) and item < 1:
                raise _fail(field, "a list of positive integers (widths, depths)", value)
            _check_params(item, field)
    elif isinstance(value, float) and not math.isfinite(value):
        raise _fail(field, "finite", value)
    elif isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= MAX_INT_PARAM:
            raise _fail(field, f"an integer in [0, {MAX_INT_PARAM}]", value)
    elif value is not None and not isinstance(value, str | bool | float):
        raise _fail(field, "JSON scalars, lists and objects", value)


def _check_bag_fields(data: dict[str, Any]) -> None:
    """Types and ranges of the bag-model fields (embedding size, abstention rule, demo flag)."""
    for field, low in (("embedding_dim", 1), ("min_instances", 1)):
        value = data.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not low <= value <= MAX_INT_PARAM):
            raise _fail(field, f"an integer in [{low}, {MAX_INT_PARAM}]", value)
    if "demo" in data and not isinstance(data["demo"], bool):
        raise _fail("demo", "true or false", data["demo"])


def validate_card_dict(data: Any) -> dict[str, Any]:
    """Check the types and ranges of a model card's fields.

    Parameters
    ----------
    data
        The parsed JSON of a card.

    Returns
    -------
    dict
        ``data`` itself, when valid.

    Raises
    ------
    ModelIntegrityError
        ``data`` is not an object, is nested more than :data:`MAX_DEPTH` levels, or a field has
        the wrong type: strings for names, version, weights, ``instances`` and the hashes
        ``sha256``/``embedding_sha256`` (64 hex digits when set); integers ``embedding_dim`` and
        ``min_instances`` >= 1 and a boolean ``demo`` (bag models); a list of distinct strings for ``classes``; an integer ``input_size`` in
        [8, 4096]; finite positive ``mpp`` and ``temperature``; three finite ``mean`` values and
        three finite positive ``std`` values; architecture parameters with finite numbers and
        positive widths.
    """
    if not isinstance(data, dict):
        raise ModelIntegrityError("model card: not a JSON object")
    _depth(data, MAX_DEPTH)
    for field in _STRINGS:
        if field in data and not isinstance(data[field], str):
            raise _fail(field, "a string", data[field])
    for field in ("sha256", "embedding_sha256"):
        sha = data.get(field, "")
        if sha and (len(sha) != 64 or not set(sha) <= _HEX):
            raise _fail(field, "64 hexadecimal digits", sha)
    _check_bag_fields(data)
    classes = data.get("classes")
    if classes is not None and (
        not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)
    ):
        raise _fail("classes", "a list of names", classes)
    size = data.get("input_size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)
                             or not 8 <= size <= 4096):
        raise _fail("input_size", "an integer in [8, 4096]", size)
    _finite_positive(data, "mpp")
    _finite_positive(data, "temperature")
    for field, positive in (("mean", False), ("std", True)):
        if field in data:
            values = data[field]
            if (
                not isinstance(values, list) or len(values) != 3
                or not all(_is_number(v) and math.isfinite(v) for v in values)
                or (positive and min(values) <= 0)
            ):
                raise _fail(field, "three finite" + (" positive" if positive else "") + " numbers",
                            values)
    for field in ("arch_params", "metrics"):
        if field in data and not isinstance(data[field], dict):
            raise _fail(field, "an object", data[field])
    _check_params(data.get("arch_params", {}), "arch_params")
    if "training_data" in data and not (
        isinstance(data["training_data"], list)
        and all(isinstance(v, str) for v in data["training_data"])
    ):
        raise _fail("training_data", "a list of strings", data["training_data"])
    return data
