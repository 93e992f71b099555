"""Red-cell radius from the curvature of red-cell edges: circles fitted to short arcs of contour.

Red cells are discs of nearly one size, so every convex piece of a red cell's outline is an arc of
a circle of the red-cell radius, whether the cell is isolated, touches or overlaps others, is cut
by the image border or has a pale centre. The stained (red-cell) area is outlined at sub-pixel
precision, circles are fitted to windows of consecutive contour points at several arc lengths,
and the fits that are good circles, convex (centre inside the object), and span a useful angle
vote for their radius. Concave junctions between touching cells, pallor rims (the centre lies in
the pale hole) and straight image-border cuts do not vote. The answer is the mode of the votes,
weighted by arc length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from skimage import measure

#: Arc lengths (px) of the fitting windows: a geometric ladder from short to long arcs.
_WINDOWS = tuple(int(round(8 * 1.45**k)) for k in range(12))  # 8 .. 476 px
#: Angle an arc must span (radians) for a well-conditioned radius.
_MIN_ANGLE, _MAX_ANGLE = 0.7, 3.5
_ANGLE_POWER = 2.0
#: Largest RMS distance of the points from the fitted circle, relative to its radius.
_MAX_RESIDUAL = 0.035
#: Log-radius histogram bin (the mode is searched on a smoothed histogram of this resolution).
_LOG_BIN = 0.02


@dataclass(frozen=True)
class ArcVotes:
    """Radii voted by convex circular arcs.

    Attributes
    ----------
    radii
        Fitted radius (px) of each accepted arc.
    weights
        Vote of each accepted arc: its share of arc length times its angle squared (longer arcs
        measure the radius better).
    lengths
        Arc length (px) of each accepted arc's share (half-overlapping windows count half).
    outline
        Total length (px) of the outline pieces that were searched for arcs.
    centres
        ``(n, 2)`` (row, col) centre of each accepted arc's circle, when known.
    """

    radii: np.ndarray
    weights: np.ndarray
    lengths: np.ndarray | None = None
    outline: float = 0.0
    centres: np.ndarray | None = None

    def without(self, drop: np.ndarray) -> ArcVotes:
        """These votes less the arcs marked in ``drop`` (bool per arc); their length leaves ``outline``.

        Parameters
        ----------
        drop
            ``(n,)`` bool: the arcs to remove.

        Returns
        -------
        ArcVotes
            The remaining arcs.
        """
        keep = ~np.asarray(drop, dtype=bool)
        lengths = None if self.lengths is None else self.lengths[keep]
        gone = float(self.lengths[~keep].sum()) if self.lengths is not None else 0.0
        centres = None if self.centres is None else self.centres[keep]
        return ArcVotes(self.radii[keep], self.weights[keep], lengths, max(self.outline - gone, 0.0), centres)

    def mode(self) -> tuple[float, float]:
        """Weighted mode of the radii and the share of the votes within ±12 % of it.

        Returns
        -------
        radius, agreement
            The modal radius (px, 0 when there are no votes) and the share of arc length
            (``lengths``, else ``weights``) voting within ±12 % of it.
        """
        if self.radii.size == 0:
            return 0.0, 0.0
        logr = np.log(self.radii)
        centres, smooth = self._histogram(logr)
        centre = centres[int(np.argmax(smooth))]
        near = np.abs(logr - centre) < 0.12
        radius = float(np.exp(np.average(logr[near], weights=self.weights[near])))
        lengths = self.weights if self.lengths is None else self.lengths
        return radius, float(lengths[near].sum() / lengths.sum())

    def rival(self, radius: float) -> float:
        """Height of the strongest other peak of the vote histogram, relative to the peak at ``radius``.

        A peak counts as another one when it lies more than 25 % (in radius) from ``radius``; 0 when
        there is none, 1 when it is as strong as the chosen one (the mode is then a coin toss).

        Parameters
        ----------
        radius
            The chosen radius (px), normally :meth:`mode`'s.

        Returns
        -------
        float
            The ratio, 0 when there are no votes.
        """
        if self.radii.size == 0 or radius <= 0:
            return 0.0
        centres, smooth = self._histogram(np.log(self.radii))
        offset = np.abs(centres - np.log(radius))
        best = smooth[offset < 2 * _LOG_BIN].max(initial=0.0)
        local = np.r_[False, (smooth[1:-1] >= smooth[:-2]) & (smooth[1:-1] >= smooth[2:]), False]
        others = smooth[local & (offset > 0.25)]
        return float(others.max() / best) if others.size and best > 0 else 0.0

    def _histogram(self, logr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bin centres and heights of the smoothed, weighted histogram of log-radii."""
        edges = np.arange(logr.min() - 0.2, logr.max() + 0.2 + _LOG_BIN, _LOG_BIN)
        hist, _ = np.histogram(logr, bins=edges, weights=self.weights)
        kernel = np.exp(-0.5 * (np.arange(-10, 11) * _LOG_BIN / 0.06) ** 2)
        # centred like mode="same", but as long as ``hist`` even when it is shorter than the kernel
        smooth = np.convolve(hist, kernel, mode="full")[10 : 10 + hist.size]
        return 0.5 * (edges[:-1] + edges[1:]), smooth


def _fit_circles(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Algebraic (Kåsa) circle fits to a batch of point windows ``(n, k, 2)``.

    Returns
    -------
    centres, radii, residuals
        ``(n, 2)`` centres, ``(n,)`` radii and RMS geometric residuals (px).
    """
    mean = points.mean(axis=1, keepdims=True)
    p = points - mean
    x, y = p[..., 0], p[..., 1]
    z = x * x + y * y
    a = np.stack(
        [
            np.stack([(x * x).sum(1), (x * y).sum(1), x.sum(1)], -1),
            np.stack([(x * y).sum(1), (y * y).sum(1), y.sum(1)], -1),
            np.stack([x.sum(1), y.sum(1), np.full(x.shape[0], x.shape[1], dtype=float)], -1),
        ],
        axis=1,
    )
    b = np.stack([(x * z).sum(1), (y * z).sum(1), z.sum(1)], -1)
    ok = np.abs(np.linalg.det(a)) > 1e-9
    sol = np.zeros_like(b)
    sol[ok] = np.linalg.solve(a[ok], b[ok][..., None])[..., 0]
    cx, cy = sol[:, 0] / 2, sol[:, 1] / 2
    r2 = sol[:, 2] + cx * cx + cy * cy
    radii = np.sqrt(np.maximum(r2, 0.0))
    dist = np.hypot(x - cx[:, None], y - cy[:, None])
    residual = np.sqrt(((dist - radii[:, None]) ** 2).mean(axis=1))
    residual[~ok] = np.inf
    centres = np.stack([cx, cy], -1) + mean[:, 0, :]
    return centres, radii, residual


def arc_votes(mask: np.ndarray, exclude: np.ndarray | None = None, max_radius: float | None = None) -> ArcVotes:
    """Circle fits to the convex arcs of the outline of ``mask``.

    Parameters
    ----------
    mask
        ``(rows, cols)`` bool or float in ``[0, 1]`` (a smoothed mask gives sub-pixel outlines).
    exclude
        Optional bool mask: contour points on it do not vote (e.g. around white cells).
    max_radius
        Largest radius (px) considered; default half the shorter image side (at least 40).

    Returns
    -------
    ArcVotes
        The accepted arcs' radii and weights.
    """
    field = np.asarray(mask, dtype=float)
    rows, cols = field.shape
    if max_radius is None:
        max_radius = max(min(rows, cols) / 2.0, 40.0)
    pieces: list[np.ndarray] = []
    for contour in measure.find_contours(field, 0.5):
        if len(contour) < _WINDOWS[0]:
            continue
        # contour points on the image border are cuts, not cell edges: split the contour there
        keep = (contour[:, 0] > 1.5) & (contour[:, 0] < rows - 2.5) & (contour[:, 1] > 1.5) & (contour[:, 1] < cols - 2.5)
        if exclude is not None:
            r = np.clip(np.round(contour[:, 0]).astype(int), 0, rows - 1)
            c = np.clip(np.round(contour[:, 1]).astype(int), 0, cols - 1)
            keep &= ~exclude[r, c]
        pieces.extend(_resample(p) for p in _runs(contour, keep))
    radii_out, weights_out, lengths_out, centres_out = [], [], [], []
    for length in _WINDOWS:  # all pieces' windows of one length in one batch
        stride = max(length // 2, 1)
        windows = [sliding_window_view(p, (length, 2))[::stride, 0] for p in pieces if len(p) >= length]
        if not windows:
            break
        radii, angles, centres = _vote_windows(np.concatenate(windows), field, max_radius)
        radii_out.append(radii)
        centres_out.append(centres)
        weights_out.append(stride * angles**_ANGLE_POWER)
        lengths_out.append(np.full(radii.size, float(stride)))
    outline = float(sum(len(p) for p in pieces))
    if not radii_out:
        return ArcVotes(np.zeros(0), np.zeros(0), np.zeros(0), outline, np.zeros((0, 2)))
    return ArcVotes(np.concatenate(radii_out), np.concatenate(weights_out), np.concatenate(lengths_out), outline,
                    np.concatenate(centres_out))


def _runs(contour: np.ndarray, keep: np.ndarray) -> list[np.ndarray]:
    """Consecutive runs of kept points (a closed contour wholly kept is one run)."""
    if keep.all():
        return [contour]
    idx = np.flatnonzero(np.diff(np.concatenate([[0], keep.astype(np.int8), [0]])))
    return [contour[a:b] for a, b in zip(idx[::2], idx[1::2], strict=True) if b - a >= _WINDOWS[0]]


def _resample(piece: np.ndarray) -> np.ndarray:
    """Points at unit arc-length steps along a polyline."""
    step = np.hypot(*np.diff(piece, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(step)])
    if s[-1] < 2:
        return piece[:1]
    t = np.arange(0.0, s[-1], 1.0)
    return np.stack([np.interp(t, s, piece[:, 0]), np.interp(t, s, piece[:, 1])], -1)


def _vote_windows(windows: np.ndarray, field: np.ndarray, max_radius: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radii, angles and centres of the windows ``(n, length, 2)`` that are good, convex circular arcs."""
    length = windows.shape[1]
    rows, cols = field.shape
    centres, radii, residual = _fit_circles(windows)
    angle = length / np.maximum(radii, 1e-6)
    good = (residual < _MAX_RESIDUAL * radii) & (angle > _MIN_ANGLE) & (angle < _MAX_ANGLE)
    good &= (radii >= 2.0) & (radii <= max_radius)
    # convex: a point a third of the way from the arc's middle to the centre is inside
    mid = windows[good, length // 2]
    probe = mid + (centres[good] - mid) * 0.3
    r = np.clip(np.round(probe[:, 0]).astype(int), 0, rows - 1)
    c = np.clip(np.round(probe[:, 1]).astype(int), 0, cols - 1)
    convex = field[r, c] > 0.5
    return radii[good][convex], angle[good][convex], centres[good][convex]
