"""Read single-cell images from files or arrays and turn them into model crops."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import UnidentifiedImageError

from hemascope.classify.crops import cell_image_to_crop, check_rgb_uint8
from hemascope.classify.framing import CENTRED, Framing, frame_picture, in_band, look_at
from hemascope.errors import (
    CorruptSlideError,
    HemascopeError,
    InvalidInputError,
    SlideNotFoundError,
)
from hemascope.io.formats import PICTURE_SUFFIXES
from hemascope.io.limits import check_given_mpp
from hemascope.io.paths import expand_slide_paths
from hemascope.io.read_image import read_picture
from hemascope.models.card import ModelCard
from hemascope.progress import CancelToken, check_cancelled

#: Pictures of one pixel size whose estimated scales are surveyed before the others of their size
#: may take it unestimated (:func:`estimate_picture_scales`): 200 confident cell or red-cell
#: estimates are far more than the ten whose median is within ±15 % in 99.5-100 % of draws
#: (:data:`hemascope.segment.batch_scale.CELL_AGREEMENT`), and a second magnification of 5 % of
#: the pictures still shows in them as ten or so.
SURVEY_IMAGES = 200
#: Pictures of one pixel size, in the band of crops or small fields
#: (:func:`hemascope.classify.framing.in_band`), looked at before the others are taken as centred
#: crops (:func:`framing_looks`).
FRAMING_SURVEY = 16


def read_cell_image(path: str | Path) -> np.ndarray:
    """Read an RGB 8-bit image file into ``(rows, cols, 3)`` uint8.

    Raises
    ------
    SlideNotFoundError
        The file does not exist.
    CorruptSlideError
        The file cannot be decoded.
    UnsupportedFormatError
        It decodes, but is not a colour picture (grayscale, binary, fully transparent); palette,
        CMYK and RGBA pictures are converted (:func:`hemascope.io.read_image.picture_rgb`).
    """
    path = Path(path)
    if not path.is_file():
        raise SlideNotFoundError(f"{path}: no such file")
    try:
        return read_picture(path, str(path))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptSlideError(f"{path}: cannot decode image ({exc})") from None


def expand_image_paths(items: Sequence[str | Path]) -> list[Path]:
    """Expand folders into their image files (sorted, recursive, hidden files skipped); files
    pass through (:func:`hemascope.io.paths.expand_slide_paths` with the picture suffixes).

    Raises
    ------
    InvalidInputError
        A folder holds no image files.
    """
    return [Path(p) for p in expand_slide_paths(items, suffixes=PICTURE_SUFFIXES)]


def _default_estimator() -> Callable[[np.ndarray], float]:
    """The zero-configuration scale: :func:`hemascope.classify.cell_scale.picture_scale` (red cells,
    and the cell itself in one-cell pictures), whose result is a float that also carries its
    confidence (``low_confidence``)."""
    from hemascope.classify.cell_scale import picture_scale

    return picture_scale


def load_cell_crops(
    items: Sequence[np.ndarray | str | Path],
    card: ModelCard,
    mpp: float | None,
    *,
    estimate: Callable[[np.ndarray], float] | None = None,
    cancel: CancelToken | None = None,
) -> tuple[list[str], list[float], list[np.ndarray], list[tuple[str, str]], list[Framing]]:
    """Load images and resample them to model crops, collecting failures instead of stopping.

    Each crop is centred on the picture's white cell (:func:`hemascope.classify.framing.frame_picture`).

    Returns
    -------
    (names, mpps, crops, failed, framings)
        Names and scales of the usable images, their crops, ``(name, reason)`` failures, and
        where each crop was centred.
    """
    if mpp is not None:
        mpp = check_given_mpp(mpp)
    names: list[str] = []
    mpps: list[float] = []
    crops: list[np.ndarray] = []
    failed: list[tuple[str, str]] = []
    framings: list[Framing] = []
    scales = [mpp] * len(items) if mpp is not None else estimate_picture_scales(items, estimate, cancel)
    looks = framing_looks(items, scales, card)
    for i, (item, scale, look) in enumerate(zip(items, scales, looks, strict=True)):
        check_cancelled(cancel)
        name = _item_name(item, i)
        try:
            if isinstance(scale, HemascopeError):
                raise scale
            image = _read_item(item, name)
            framing = frame_picture(image, scale, card, look=look)
            crop = cell_image_to_crop(image, scale, card, centre=framing.centre)
        except HemascopeError as exc:
            # the reason without the name (readers put the path first; callers print both)
            failed.append((name, str(exc).removeprefix(f"{name}: ")))
            continue
        names.append(name)
        mpps.append(scale)
        crops.append(crop)
        framings.append(framing)
    return names, mpps, crops, failed, framings


def framing_looks(
    items: Sequence[np.ndarray | str | Path], scales: Sequence[float | HemascopeError], card: ModelCard
) -> list[bool]:
    """Per picture, whether :func:`~hemascope.classify.framing.frame_picture` must look for an
    off-centre cell: ``False`` for the pictures of a pixel size whose :data:`FRAMING_SURVEY`
    surveyed members (spread over more of them) all hold a white cell in their centre (a source of
    centred crops, as CellaVision exports are), ``True`` otherwise."""
    sizes: dict[tuple[int, int], list[tuple[int, float]]] = defaultdict(list)
    for i, (item, scale) in enumerate(zip(items, scales, strict=True)):
        if isinstance(scale, HemascopeError):
            continue
        size = _picture_size(item)
        if size is not None and in_band(size, float(scale), card):
            sizes[size].append((i, float(scale)))
    looks = [True] * len(items)
    for members in sizes.values():
        if len(members) <= FRAMING_SURVEY:
            continue
        surveyed = [members[int(j)] for j in spread_indices(len(members), FRAMING_SURVEY)]
        try:
            centred = all(
                look_at(_read_item(items[i], _item_name(items[i], i)), scale).how == CENTRED for i, scale in surveyed
            )
        except HemascopeError:  # an unreadable one: look at each (and fail it) as it comes
            continue
        for i, _ in members if centred else ():
            looks[i] = False
    return looks


def spread_indices(total: int, count: int) -> np.ndarray:
    """At most ``count`` indices into ``total`` items, evenly spread from the first to the last."""
    return np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(int)) if total else np.zeros(0, int)


def sample_pictures(items: Sequence[np.ndarray | str | Path], count: int) -> list[np.ndarray]:
    """At most ``count`` of ``items`` (:func:`spread_indices`) read as RGB uint8; unreadable ones left out."""
    pictures = []
    for i in spread_indices(len(items), count):
        try:
            pictures.append(_read_item(items[int(i)], _item_name(items[int(i)], int(i))))
        except HemascopeError:
            continue
    return pictures


def _item_name(item: np.ndarray | str | Path, index: int) -> str:
    return f"<array {index}>" if isinstance(item, np.ndarray) else str(item)


def _read_item(item: np.ndarray | str | Path, name: str) -> np.ndarray:
    return check_rgb_uint8(item, name) if isinstance(item, np.ndarray) else read_cell_image(item)


def _estimate_one(estimate: Callable[[np.ndarray], float], image: np.ndarray) -> float:
    """``estimate(image)``; an unexpected error in it (a bug on an odd image) fails this image only."""
    try:
        return estimate(image)
    except HemascopeError:
        raise
    except Exception as exc:  # noqa: BLE001 - one image's failure must not lose the batch
        raise InvalidInputError(
            f"cannot estimate the pixel size ({type(exc).__name__}: {exc}; unexpected: please report it); "
            "pass --mpp"
        ) from exc


def _picture_size(item: np.ndarray | str | Path) -> tuple[int, int] | None:
    """An item's ``(rows, cols)`` from the array or the file's header (no decoding); ``None`` if unknown."""
    if isinstance(item, np.ndarray):
        return (int(item.shape[0]), int(item.shape[1])) if item.ndim >= 2 else None
    from PIL import Image

    try:
        with Image.open(item) as img:
            return int(img.size[1]), int(img.size[0])
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def estimate_picture_scales(
    items: Sequence[np.ndarray | str | Path],
    estimate: Callable[[np.ndarray], float] | None = None,
    cancel: CancelToken | None = None,
    survey: int = SURVEY_IMAGES,
) -> list[float | HemascopeError]:
    """Per picture its estimated µm/px — pooled over the pictures of one pixel size
    (:func:`hemascope.segment.batch_scale.pool_estimates`) — or the error that stopped it.

    Of more than ``survey`` pictures of one pixel size, ``survey`` spread evenly over them are
    estimated first; when those agree on one scale
    (:func:`hemascope.segment.batch_scale.shared_scale`: no second magnification, not a resized
    public set's spread), the others take it without being estimated (cues ``surveyed``);
    otherwise every picture is estimated.

    Parameters
    ----------
    items
        RGB uint8 arrays and/or image file paths.
    estimate
        ``image -> µm/px`` (default :func:`hemascope.classify.cell_scale.picture_scale`).
    cancel
        Checked before each picture.
    survey
        Pictures of one pixel size estimated before the others may take their scale.
    """
    from hemascope.segment.batch_scale import pool_estimates, shared_scale, size_key, size_keys
    from hemascope.segment.scale import ScaleEstimate

    estimate = estimate or _default_estimator()
    values: list[float | HemascopeError | None] = [None] * len(items)
    keys: list[tuple | None] = [None] * len(items)

    def measure(indices: Sequence[int]) -> None:
        for i in indices:
            check_cancelled(cancel)
            try:
                image = _read_item(items[i], _item_name(items[i], i))
                values[i] = _estimate_one(estimate, image)  # a float; an estimate also carries its confidence
                keys[i] = size_key(image.shape)
            except HemascopeError as exc:
                values[i] = exc

    sizes: dict[tuple[int, int] | None, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        sizes[_picture_size(item) if len(items) > survey else None].append(i)
    taken: dict[int, ScaleEstimate] = {}
    for size, members in sizes.items():
        if size is None or len(members) <= survey:
            measure(members)
            continue
        surveyed = [members[int(j)] for j in spread_indices(len(members), survey)]
        measure(surveyed)
        shared = shared_scale([v for v in (values[i] for i in surveyed) if isinstance(v, ScaleEstimate)])
        rest = sorted(set(members) - set(surveyed))
        if shared is None:
            measure(rest)
            continue
        reason = f"{shared.reason}; not estimated alone: the {len(surveyed)} surveyed images of its size agree"
        for i in rest:
            taken[i] = ScaleEstimate(shared.mpp, shared.confidence, {**shared.cues, "surveyed": len(surveyed)}, reason)
    pooled = pool_estimates([v if isinstance(v, ScaleEstimate) else None for v in values], size_keys(keys))
    out: list[float | HemascopeError] = []
    for i, (value, shared_value) in enumerate(zip(values, pooled, strict=True)):
        chosen = taken.get(i, shared_value if shared_value is not None else value)
        if chosen is None:  # pragma: no cover - every picture is measured or takes its group's scale
            raise AssertionError(f"picture {i} has no scale")
        out.append(chosen)
    return out
