"""Run settings of one analysis: :class:`AnalysisConfig`, read from and written to one TOML file.

The TOML file is flat: every key is a field of :class:`AnalysisConfig`, plus an optional
``[segmenter_settings]`` table passed through to the segmentation backend. Missing keys take their
defaults; unknown keys, wrong types and out-of-range values raise :class:`~hemascope.errors.ConfigError`
with a message that names the key. Example::

    segmenter = "classical"
    cell_model = "wbc"
    mpp = 0.25                    # µm per level-0 pixel; overrides the file's value
    roi_um = [[0, 0], [0, 500], [500, 500], [500, 0]]   # polygon, (row, col) = (y, x) in µm
    region_size = 2048            # level-0 pixels per region side
    device = "auto"
    batch_size = 64

    [segmenter_settings]
    min_diameter_um = 6.0

The configuration is saved next to every result (``config.toml``), so a result always says how it
was made.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hemascope.errors import ConfigError, InvalidInputError

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class AnalysisConfig:
    """Settings of one slide analysis (all optional; defaults give the bundled pipeline).

    Attributes
    ----------
    segmenter
        ``"classical"``, ``"cellpose"`` or ``"auto"`` (see :class:`hemascope.segment.SegmentSettings`).
    segmenter_settings
        Extra keyword settings passed to the segmentation backend (e.g. a Cellpose model path).
    cell_model
        Name or path of the cell classifier (see :func:`hemascope.models.list_models`).
    slide_model
        Name or path of the slide-level (bag) model; ``None`` uses the library default and
        ``"none"`` skips the subtype prediction.
    min_cells
        Fewest classified cells for a differential count (``None``: library default).
    min_blasts
        Fewest blasts before the subtype model answers instead of abstaining (``None``: default).
    min_confidence
        Cells whose top class probability is below this are counted as ``"unclassified"``.
    mpp
        µm per level-0 pixel; overrides the slide's own value (``None``: use the file's).
    roi_um
        Region of interest as a polygon of ``(row, col)`` = ``(y, x)`` vertices in µm
        (``None``: the whole smear).
    region_size
        Side of a segmentation region in level-0 pixels (the unit of work for resume and dask).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    batch_size
        Cells per classifier batch.
    tta
        Test-time augmentation (flips) in the cell classifier.
    """

    segmenter: str = "classical"
    segmenter_settings: dict[str, Any] = field(default_factory=dict)
    cell_model: str = "wbc"
    slide_model: str | None = None
    min_cells: int | None = None
    min_blasts: int | None = None
    min_confidence: float = 0.0
    mpp: float | None = None
    roi_um: tuple[tuple[float, float], ...] | None = None
    region_size: int = 2048
    device: str = "auto"
    batch_size: int = 64
    tta: bool = False

    def __post_init__(self) -> None:
        if self.roi_um is not None:
            object.__setattr__(self, "roi_um", _as_polygon(self.roi_um))
        _validate(self)

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AnalysisConfig:
        """Build a config from a plain mapping (e.g. a parsed TOML file), validating every key.

        Parameters
        ----------
        values
            Field names to values; missing fields take their defaults.

        Returns
        -------
        AnalysisConfig

        Raises
        ------
        ConfigError
            For unknown keys, wrong types or values out of range.
        """
        if not isinstance(values, dict):
            raise ConfigError(f"a configuration must be a mapping, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ConfigError(f"unknown configuration key(s): {', '.join(hints)}")
        values = dict(values)
        if "segmenter_settings" in values and values["segmenter_settings"] is None:
            values["segmenter_settings"] = {}
        for key in ("slide_model", "min_cells", "min_blasts", "mpp"):
            if values.get(key) == "":
                values[key] = None
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path) -> AnalysisConfig:
        """Read and validate a TOML configuration file.

        Parameters
        ----------
        path
            The ``.toml`` file.

        Returns
        -------
        AnalysisConfig

        Raises
        ------
        ConfigError
            If the file is missing, is not valid TOML or holds invalid settings.
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"configuration file not found: {path}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not a valid TOML file ({exc})") from None
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    # --- output -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON/TOML-able values (``None`` fields included)."""
        data = asdict(self)
        if self.roi_um is not None:
            data["roi_um"] = [list(v) for v in self.roi_um]
        data["segmenter_settings"] = dict(self.segmenter_settings)
        return data

    def to_toml(self) -> str:
        """The settings as TOML text (fields that are ``None`` are left out: TOML has no null)."""
        import tomli_w

        data = {k: v for k, v in self.to_dict().items() if v is not None}
        settings = data.pop("segmenter_settings")
        if settings:
            data["segmenter_settings"] = settings  # tables must come after plain keys
        return tomli_w.dumps(data)

    def save(self, path: str | Path) -> Path:
        """Write the configuration as TOML, atomically.

        Parameters
        ----------
        path
            Destination ``.toml`` file.

        Returns
        -------
        Path
            ``path``.
        """
        from hemascope.files import atomic_write_text

        return atomic_write_text(path, self.to_toml())

    def fingerprint(self) -> str:
        """A short hash of the settings that change the results (used to guard resume).

        ``device`` and ``batch_size`` are left out: a run may resume on other hardware.
        """
        data = {k: v for k, v in self.to_dict().items() if k not in ("device", "batch_size")}
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def roi_px(self, mpp: float) -> list[tuple[float, float]] | None:
        """The ROI polygon in level-0 pixels ``(row, col)`` for a slide of ``mpp`` µm/px."""
        if self.roi_um is None:
            return None
        if not mpp or mpp <= 0:
            raise ConfigError("roi_um needs the slide's µm/px: set 'mpp' in the configuration")
        return [(r / mpp, c / mpp) for r, c in self.roi_um]


def load_config(source: AnalysisConfig | dict[str, Any] | str | Path | None) -> AnalysisConfig:
    """Normalise what a caller passed as a configuration.

    Parameters
    ----------
    source
        An :class:`AnalysisConfig`, a mapping of settings, a TOML file path, or ``None`` (defaults).

    Returns
    -------
    AnalysisConfig
    """
    if source is None:
        return AnalysisConfig()
    if isinstance(source, AnalysisConfig):
        return source
    if isinstance(source, dict):
        return AnalysisConfig.from_dict(source)
    if isinstance(source, (str, Path)):
        return AnalysisConfig.from_toml(source)
    raise ConfigError(f"cannot use a {type(source).__name__} as a configuration")


# --- validation ---------------------------------------------------------------------------------
def _as_polygon(value: Any) -> tuple[tuple[float, float], ...]:
    try:
        poly = tuple(
            (float(v[0]), float(v[1])) for v in value if isinstance(v, list | tuple) and len(v) == 2
        )
        ok = len(poly) == len(value) and all(math.isfinite(x) for p in poly for x in p)
    except (TypeError, ValueError, IndexError, KeyError, OverflowError):
        ok = False
    if not ok:
        raise ConfigError("'roi_um' must be a list of [row, col] pairs in µm")
    return poly


def _check_type(name: str, value: Any, types: tuple[type, ...], optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        wanted = " or ".join(t.__name__ for t in types) + (" (or left out)" if optional else "")
        raise ConfigError(f"{name!r} must be {wanted}, got {value!r}")


def _validate(cfg: AnalysisConfig) -> None:
    from hemascope.segment.settings import SEGMENTERS

    _check_type("segmenter", cfg.segmenter, (str,))
    if cfg.segmenter not in SEGMENTERS:
        raise ConfigError(f"'segmenter' must be one of {', '.join(SEGMENTERS)}, got {cfg.segmenter!r}")
    _check_type("segmenter_settings", cfg.segmenter_settings, (dict,))
    _check_type("cell_model", cfg.cell_model, (str,))
    if not cfg.cell_model:
        raise ConfigError("'cell_model' must not be empty")
    _check_type("slide_model", cfg.slide_model, (str,), optional=True)
    for name in ("min_cells", "min_blasts"):
        value = getattr(cfg, name)
        _check_type(name, value, (int,), optional=True)
        if value is not None and value < 0:
            raise ConfigError(f"{name!r} must be >= 0, got {value}")
    _check_type("min_confidence", cfg.min_confidence, (int, float))
    if not 0.0 <= cfg.min_confidence <= 1.0:
        raise ConfigError(f"'min_confidence' must be in [0, 1], got {cfg.min_confidence}")
    _check_type("mpp", cfg.mpp, (int, float), optional=True)
    if cfg.mpp is not None:
        from hemascope.io.limits import check_given_mpp

        try:
            check_given_mpp(cfg.mpp, "'mpp'")
        except InvalidInputError as exc:
            raise ConfigError(str(exc)) from None
    if cfg.roi_um is not None and len(cfg.roi_um) < 3:
        raise ConfigError(f"'roi_um' needs at least 3 vertices, got {len(cfg.roi_um)}")
    _check_type("region_size", cfg.region_size, (int,))
    if not 128 <= cfg.region_size <= 65536:
        raise ConfigError(f"'region_size' must be in [128, 65536] pixels, got {cfg.region_size}")
    _check_type("device", cfg.device, (str,))
    if not _DEVICE_PATTERN.match(cfg.device):
        raise ConfigError(f"'device' must be auto, cpu, cuda, cuda:N or mps, got {cfg.device!r}")
    _check_type("batch_size", cfg.batch_size, (int,))
    if not 1 <= cfg.batch_size <= 65536:
        raise ConfigError(f"'batch_size' must be in [1, 65536], got {cfg.batch_size}")
    _check_type("tta", cfg.tta, (bool,))


__all__ = ["AnalysisConfig", "load_config"]
