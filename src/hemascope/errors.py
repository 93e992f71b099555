"""The exceptions hemascope raises on bad input.

Every error a user can cause (a missing file, an unsupported or corrupt slide, a wrong model file,
an invalid configuration) is one of these. The CLI turns any :class:`HemascopeError` into one line on
stderr and exit code 2; anything else is a bug.
"""

from __future__ import annotations


class HemascopeError(Exception):
    """Base class of every documented hemascope error."""


class SlideError(HemascopeError):
    """A slide (or image) cannot be opened or read."""


class SlideNotFoundError(SlideError, FileNotFoundError):
    """The path does not exist."""


class UnsupportedFormatError(SlideError):
    """The file exists but is not a format hemascope can read (or not an RGB 8-bit image)."""


class CorruptSlideError(SlideError):
    """The file is damaged: bad tile offsets, truncated or undecodable tiles, inconsistent levels."""


class InvalidInputError(HemascopeError, ValueError):
    """An argument or input image is outside what the function accepts (shape, dtype, ROI, ...)."""


class ModelError(HemascopeError):
    """A model cannot be found, verified or loaded."""


class ModelNotFoundError(ModelError):
    """No model of that name or path exists locally (hemascope never downloads silently)."""


class ModelIntegrityError(ModelError):
    """A model file has the wrong hash, wrong tensor shapes or an unsafe format."""


class ConfigError(HemascopeError):
    """A run configuration (TOML file or dict) is invalid."""


class DataError(HemascopeError):
    """A training/evaluation data set or labels file is empty or inconsistent."""


class ResultError(HemascopeError):
    """A saved result directory is missing, incomplete (no completion marker) or inconsistent."""


class Cancelled(HemascopeError):
    """A long computation was cancelled by the caller."""


__all__ = [
    "HemascopeError",
    "SlideError",
    "SlideNotFoundError",
    "UnsupportedFormatError",
    "CorruptSlideError",
    "InvalidInputError",
    "ModelError",
    "ModelNotFoundError",
    "ModelIntegrityError",
    "ConfigError",
    "DataError",
    "ResultError",
    "Cancelled",
]
