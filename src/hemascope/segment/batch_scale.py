"""One scale for a batch of images from one source: per-image estimates pooled.

Pictures of one pixel size processed together (one command, one folder tree) were taken by one
camera or scanner, nearly always at one magnification, so they share one µm/px. A single crop
often shows too few red cells to measure it well (a CellaVision crop alone is within ±15 % in
63-94 % of images), and one patient's red cells can be 10-20 % off the norm, but the median over
many images is right in nearly all (BENCHMARKS.md, "One scale per source").
:func:`pool_estimates` gives every member of such a group (at least :data:`MIN_IMAGES`) the
confidence-weighted median of the members' own :class:`~hemascope.segment.scale.ScaleEstimate`\\ s
around their densest value.

With fewer than :data:`FULL_AGREEMENT` confident estimates, or when the group is mostly
(:data:`CLOSE_UP_SHARE`) close-ups of one white cell (where estimates are guesses: red-cell pieces
read 10-30 % high, a nucleus taken as 11 µm reads AML blasts 20 % low, and a few can be confidently
wrong together), the group takes the confidence-weighted median of all its estimates instead of
the densest value; a group of close-ups is never split into two magnifications.

Pictures whose pixel size fewer than :data:`MIN_IMAGES` others of the run share (tight boxes
cut from one camera's fields, each its own size) are pooled together as one more group
(:func:`size_keys`), by the same rules: on another lab's tight boxes in a rapid stain, one scale
per picture cost white-cell precision 0.96 → 0.79 (BENCHMARKS.md, session 29).

Nor is a group pooled whose estimates spread over more than :data:`POOL_MAX_SPREAD` (their
middle half): pictures resized to one pixel size from crops of different sizes (a public data
set's tight boxes) share a pixel size, not a µm/px — even when a few confident estimates among
them bunch at two scales, unless :data:`TWO_SCALES_SHARE` of all the estimates lie at one of them.

Two magnifications of one pixel size are not averaged: when the confident estimates show a second
peak more than :data:`AGREE` away, parted from the main one by a valley and holding at least
:data:`SECOND_SCALE_SHARE` of them (three or more), only the images near the main scale take it,
flagged low-confidence (an image there may belong to either scale), and the others keep their
own estimates — except unsure ones that no confident estimate agrees with (a close-up read from
one nucleus, a field whose few red cells were misread: 2.7-6.4 times off in a folder of leukaemic
fields), which take the nearer of the two scales, still flagged. Without a second scale a few
confident estimates far from the rest are taken as wrong. A small minority at another magnification (under ~10 % of the confident estimates) can go
unseen and take the main scale: run different magnifications as separate commands.

A pooled estimate is still a ``ScaleEstimate``: its ``cues`` record ``batch_images`` (and
``batch_of``: "of this size", or "of sizes no others share" for :data:`LONE_SIZES`) and the
image's own estimate (``own_mpp``, ``own_confidence``), its ``reason`` says it is a batch median.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np

from hemascope.segment.scale import ScaleEstimate

#: A second scale needs this share of the confident estimates (and at least three) to agree on it.
SECOND_SCALE_SHARE = 0.05
#: Confidence cap (below :data:`~hemascope.segment.scale.MIN_CONFIDENCE`: flagged) of a pooled
#: estimate in a group that also holds another scale: an image near the main one may belong to either.
MIXED_CONFIDENCE = 0.4
#: Smoothing (log µm/px) of the confident estimates' density when looking for a second scale.
_BANDWIDTH = 0.05
#: A second peak is parted from the main one when the density between them dips below this share
#: of its height (0.7: no false second scale in 13 single-patient DeepAPL folders; a ×1.4 mixture
#: of 18 % of the confident estimates found; BENCHMARKS.md).
_VALLEY = 0.7
#: Pool only when the middle half of a group's estimates spans less than this ratio (their
#: interquartile range; a few wrong ones do not widen it). Pictures of one camera: up to 1.24 in
#: groups of 60-150 (held-out crops, recoloured and defocused copies, fields) and 1.36 in groups
#: of 5 close-ups; crops cut to boxes of 45-100 % and resized to one pixel size, each at its own
#: µm/px: 1.48-1.56 (BENCHMARKS.md, "Pictures of one size, not of one scale").
POOL_MAX_SPREAD = 1.4
#: A group whose middle half spans more than :data:`POOL_MAX_SPREAD` is two magnifications only
#: when this share of all its estimates lies within :data:`AGREE` of one of the two scales: else
#: it is a continuum of scales (boxes of 45-100 % of DeepAPL crops resized to 256 px: 0.71, two of
#: its seven confident estimates 1.4 times apart taken for a second scale; two magnifications of
#: ten pictures: 0.91; BENCHMARKS.md, "Resized boxes are no two magnifications").
TWO_SCALES_SHARE = 0.8
#: Fewest images of one source for which their estimates are pooled.
MIN_IMAGES = 5
#: Estimates within this (relative) of each other count as one scale.
CLUSTER = 0.15
#: Estimates within this (relative) of the shared scale agree with it; a second scale lies further.
AGREE = 0.2
#: Confident estimates agreeing with the median for a fully confident pooled estimate.
FULL_AGREEMENT = 3
#: A group this much made of close-ups of one white cell takes the weighted median of all its
#: estimates (tuning close-ups: 85-95 % close-up-like; DeepAPL crops and their rescaled copies:
#: 28-68 %, CellaVision PBC crops <= 4 %).
CLOSE_UP_SHARE = 0.8
#: Estimates that read the picture's white cell (``cell_mpp`` in their cues, see
#: :func:`hemascope.classify.cell_scale.picture_scale`) within :data:`AGREE` of the median for a
#: fully confident pooled estimate: each is flagged alone, but they are unbiased across labs, so
#: the median of ten random ones is within ±15 % in 99.5-100 % of draws on the held-out crops,
#: close-ups and recoloured copies of three labs (93 % on defocused ones; BENCHMARKS.md, "Scale
#: from the cell").
CELL_AGREEMENT = 10


#: The group of the pictures whose pixel size fewer than :data:`MIN_IMAGES` others share.
LONE_SIZES = "sizes no others share"


def size_key(shape: Sequence[int]) -> tuple[int, int]:
    """An image's pixel size ``(rows, cols)``: the group its scale is pooled over (:func:`size_keys`)."""
    return int(shape[0]), int(shape[1])


def size_keys(sizes: Sequence[Hashable]) -> list[Hashable]:
    """The groups a run's images are pooled in: their :func:`size_key`, except that the images
    whose size fewer than :data:`MIN_IMAGES` of the run share (tight boxes cut from one camera's
    fields, each its own size) are one group, :data:`LONE_SIZES`; ``None`` (no size) stays."""
    count = Counter(k for k in sizes if k is not None)
    return [k if k is None or count[k] >= MIN_IMAGES else LONE_SIZES for k in sizes]


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _main_scale(log_mpp: np.ndarray, weights: np.ndarray) -> float:
    """The log µm/px most of the weight agrees on: the weighted median around the densest value
    (a mode, so that two magnifications in one group do not average into a scale of neither).
    Sorted windows, so that a command of 10,000 pictures costs no n² matrix."""
    order = np.argsort(log_mpp)
    x, w = log_mpp[order], weights[order]
    cumulative = np.concatenate([[0.0], np.cumsum(w)])
    lo = np.searchsorted(x, x - np.log1p(CLUSTER), side="left")
    hi = np.searchsorted(x, x + np.log1p(CLUSTER), side="right")
    k = int(np.argmax(cumulative[hi] - cumulative[lo]))
    return _weighted_median(x[lo[k] : hi[k]], w[lo[k] : hi[k]])


def _has_second_scale(log_mpp: np.ndarray, confident: np.ndarray, centre: float) -> bool:
    """Whether the confident estimates show a second scale: a peak of their density more than
    :data:`AGREE` from ``centre``, parted from the main peak by a valley (a broad spread of one
    scale has none) and with :data:`SECOND_SCALE_SHARE` of them (three or more) within
    :data:`CLUSTER` of it (a few stray errors are not a scale)."""
    x = log_mpp[confident]
    if x.size < 3:
        return False
    grid = np.arange(x.min() - 3 * _BANDWIDTH, x.max() + 3 * _BANDWIDTH, _BANDWIDTH / 5)
    density = np.exp(-0.5 * ((grid[:, None] - x[None, :]) / _BANDWIDTH) ** 2).sum(axis=1)
    peaks = np.flatnonzero((density[1:-1] > density[:-2]) & (density[1:-1] >= density[2:])) + 1
    main = int(np.argmin(np.abs(grid - centre)))
    needed = max(3, SECOND_SCALE_SHARE * x.size)
    for peak in peaks:
        if abs(grid[peak] - centre) <= np.log1p(AGREE):
            continue
        lo, hi = sorted((int(peak), main))
        parted = density[lo : hi + 1].min() < _VALLEY * density[peak]
        if parted and (np.abs(x - grid[peak]) <= np.log1p(CLUSTER)).sum() >= needed:
            return True
    return False


def _pool_group(members: list[ScaleEstimate], what: str = "of this size"
                ) -> tuple[ScaleEstimate, list[ScaleEstimate | None], bool]:
    """The group's shared estimate, the scale each member takes (``None``: its own), and whether a
    second scale was seen (``what``: the group's images, as its reason names them)."""
    log_mpp = np.log([m.mpp for m in members])
    confidence = np.array([m.confidence for m in members])
    confident = np.array([not m.low_confidence for m in members])
    close_ups = np.mean([m.from_close_up for m in members]) >= CLOSE_UP_SHARE
    if confident.sum() >= FULL_AGREEMENT and not close_ups:
        centre = _main_scale(log_mpp, confidence + 0.05)
    else:  # close-ups: no mode to trust (a cluster of confident wrong answers could be it)
        centre = _weighted_median(log_mpp, confidence + 0.05)
    near = np.abs(log_mpp - centre) <= np.log1p(AGREE)
    # nor a second magnification: close-ups' confident answers are not sure enough to show one
    mixed = not close_ups and _has_second_scale(log_mpp, confident, centre)
    spread = float(np.subtract(*np.percentile(log_mpp, [75, 25])))
    if mixed and spread > np.log(POOL_MAX_SPREAD):  # two scales, or a continuum of them?
        on_either = near | (np.abs(log_mpp - _second_scale(log_mpp, confident, near)) <= np.log1p(AGREE))
        mixed = bool(on_either.mean() >= TWO_SCALES_SHARE)
    take = near if mixed else np.ones(len(members), dtype=bool)
    agreeing = int((confident & near).sum())
    cells_agreeing = int((near & np.array(["cell_mpp" in m.cues for m in members])).sum())
    pooled_confidence = max(min(1.0, agreeing / FULL_AGREEMENT), min(1.0, cells_agreeing / CELL_AGREEMENT),
                            float(np.median(confidence[take])))
    reason = (f"median of the {int(take.sum())} images {what} in this run that agree on one scale "
              f"({agreeing} confident estimates and {cells_agreeing} cells' within ±{AGREE:.0%}"
              + ("; the run holds another scale too" if mixed else "") + ")")
    shared = ScaleEstimate(float(np.exp(centre)), pooled_confidence, {"batch_images": int(take.sum()), "batch_of": what},
                           reason)
    if not mixed and spread > np.log(POOL_MAX_SPREAD):  # no one scale
        take = np.zeros(len(members), dtype=bool)
    targets: list[ScaleEstimate | None] = [shared if t else None for t in take]
    if mixed:
        for i, second in _stray_targets(log_mpp, confident, near, centre, what):
            targets[i] = second if second is not None else shared
    return shared, targets, mixed


def _second_scale(log_mpp: np.ndarray, confident: np.ndarray, near: np.ndarray) -> float:
    """log µm/px of a group's second scale: the median of its confident estimates away from the
    main one (``near`` it: within :data:`AGREE`)."""
    return float(np.median(log_mpp[confident & ~near]))


def _stray_targets(log_mpp: np.ndarray, confident: np.ndarray, near: np.ndarray, centre: float,
                   what: str) -> list[tuple[int, ScaleEstimate | None]]:
    """In a group of two scales, the unsure estimates that no confident one agrees with (within
    :data:`AGREE`), each with the scale it takes: ``None`` for the main one (``centre``, log
    µm/px; ``near`` it: the members within :data:`AGREE`), else the second scale (the median of
    the confident estimates away from the main one) when it lies nearer."""
    unsure = np.flatnonzero(~confident & ~near)
    if not len(unsure):
        return []
    # the nearest confident estimate of each, from the sorted ones (no n × n matrix, as _main_scale)
    ref = np.sort(log_mpp[confident])  # a second scale holds three or more
    at = np.searchsorted(ref, log_mpp[unsure])
    gap = np.minimum(np.abs(log_mpp[unsure] - ref[np.clip(at - 1, 0, len(ref) - 1)]),
                     np.abs(log_mpp[unsure] - ref[np.clip(at, 0, len(ref) - 1)]))
    strays = unsure[gap > np.log1p(AGREE)]
    if not len(strays):
        return []
    away = confident & ~near
    second = _second_scale(log_mpp, confident, near)
    other = ScaleEstimate(float(np.exp(second)), 0.0, {"batch_images": int(away.sum()), "batch_of": what},
                          f"median of the {int(away.sum())} confident estimates {what} in this run at its second scale")
    return [(int(i), other if abs(log_mpp[i] - second) < abs(log_mpp[i] - centre) else None) for i in strays]


def shared_scale(estimates: Sequence[ScaleEstimate]) -> ScaleEstimate | None:
    """The one scale a group's estimates agree on, when every one of them takes it.

    ``None`` when :func:`pool_estimates` would leave any of them its own estimate: fewer than
    :data:`MIN_IMAGES`, a second magnification, or a spread wider than :data:`POOL_MAX_SPREAD`.
    """
    if len(estimates) < MIN_IMAGES:
        return None
    shared, targets, mixed = _pool_group(list(estimates))
    return None if mixed or any(t is None for t in targets) else shared


def pool_estimates(estimates: Sequence[float | None], keys: Sequence[Hashable]) -> list[float | None]:
    """Give the images of one source the median of their estimated scales.

    Parameters
    ----------
    estimates
        Per image: a :class:`~hemascope.segment.scale.ScaleEstimate` (pooled), or a plain float or
        ``None`` (a given scale, or none: left as it is).
    keys
        Per image: its group (normally :func:`size_keys`); images with equal keys are pooled.

    Returns
    -------
    list
        The estimates, those of a pooled group replaced by the group's ``ScaleEstimate`` (with
        the image's own estimate in its ``cues``).
    """
    if len(estimates) != len(keys):
        raise ValueError("one key per estimate")
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, (estimate, key) in enumerate(zip(estimates, keys, strict=True)):
        if isinstance(estimate, ScaleEstimate):
            groups[key].append(i)
    out = list(estimates)
    for key, indices in groups.items():
        if len(indices) < MIN_IMAGES:
            continue
        members = [estimates[i] for i in indices]
        what = f"of {LONE_SIZES}" if key == LONE_SIZES else "of this size"
        _, targets, mixed = _pool_group(members, what)  # type: ignore[arg-type]
        for i, own, target in zip(indices, members, targets, strict=True):
            if target is None:
                continue
            cues = {**target.cues, "own_mpp": own.mpp, "own_confidence": own.confidence}  # type: ignore[union-attr]
            reason = f"{target.reason}; this image alone: {own.mpp:.4g} µm/px, confidence {own.confidence:.2f}"  # type: ignore[union-attr]
            confidence = min(own.confidence, MIXED_CONFIDENCE) if mixed else target.confidence  # type: ignore[union-attr]
            out[i] = ScaleEstimate(target.mpp, confidence, cues, reason)
    return out


def estimate_field_scales(
    paths: Sequence[str | Path], estimate: Callable[[np.ndarray], float] | None = None
) -> dict[str, float]:
    """Estimated µm/px of the plain field images among ``paths``, pooled per source.

    Only pictures (:attr:`hemascope.io.Slide.is_picture`: PNG, JPEG, a camera's one-level TIFF, ...)
    without a pixel size in the file are estimated (as
    :func:`hemascope.segment.regions.slide_mpp` does for one slide); slides that carry their
    scale, and inputs that cannot be opened or scaled, are left out (the caller meets and reports
    them when it processes them).

    Parameters
    ----------
    paths
        The run's inputs.
    estimate
        ``picture -> µm/px`` (see :func:`hemascope.segment.regions.slide_mpp`).

    Returns
    -------
    dict
        ``str(path) -> ScaleEstimate``, pooled over the images of one pixel size when there are
        at least :data:`MIN_IMAGES` of them (see :func:`pool_estimates`).
    """
    from hemascope.io import open_slide
    from hemascope.segment.regions import slide_mpp

    estimates: list[float | None] = []
    keys: list[Hashable] = []
    for path in paths:
        value, key = None, None
        try:
            with open_slide(path) as slide:
                if slide.is_picture and not slide.mpp:
                    value, key = slide_mpp(slide, estimate=estimate)[0], size_key(slide.shape)
        except Exception:  # noqa: BLE001 - reported when the caller processes it (even a bug)
            pass
        estimates.append(value)
        keys.append(key)
    pooled = pool_estimates(estimates, size_keys(keys))
    return {str(p): e for p, e in zip(paths, pooled, strict=True) if e is not None}
