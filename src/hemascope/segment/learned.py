"""The ``learned`` backend: a small U-Net outlines the white cell at the centre of each candidate crop.

Trained (``scripts/train_cell_segmenter.py``) on pseudo-labels of the classical segmenter on
CellaVision crops of two labs (``scripts/make_segmenter_labels.py``) under heavy stain, colour,
optics and framing augmentation, so that it keeps the classical outlines where those are right
and holds when the picture is unlike them. It sees a window of :data:`INPUT_PX` px at
:data:`INPUT_MPP` µm/px (38 µm) centred on the candidate, each channel divided by the window's
own brightest colour, and answers background / cytoplasm / nucleus of the cell at the centre
(other cells in the window are background). Offline and CPU-fast: the weights ship with the
package (``segment/weights/cellseg.safetensors``, their card in the file's metadata); another
file can be given with ``SegmentSettings.model``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hemascope.errors import ModelError, ModelNotFoundError

#: Side of the network's window, px.
INPUT_PX = 96
#: µm/px of the network's window.
INPUT_MPP = 0.4
#: The bundled weights.
DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "cellseg.safetensors"
#: Channel widths of the U-Net's levels.
WIDTHS = (16, 32, 48, 64)
#: Windows per forward pass.
_BATCH = 16


def _block(cin: int, cout: int, n: int) -> nn.Sequential:
    """``n`` × (3×3 convolution, BatchNorm, ReLU)."""
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
                   nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """A U-Net of ``len(widths)`` levels: two 3×3 convolutions down, one up, 1×1 to ``classes``."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS, classes: int = 3) -> None:
        super().__init__()
        self.down = nn.ModuleList(_block(3 if i == 0 else widths[i - 1], w, 2) for i, w in enumerate(widths))
        self.up = nn.ModuleList(_block(widths[i + 1] + widths[i], widths[i], 1) for i in range(len(widths) - 1))
        self.head = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, level in enumerate(self.down):
            x = level(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for i in range(len(self.up) - 1, -1, -1):
            x = F.interpolate(x, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.up[i](torch.cat([x, skips[i]], 1))
        return self.head(x)


def brightest_colour(image: np.ndarray) -> np.ndarray:
    """The brightest colour a picture shows (per channel, its 99th percentile): the glass where
    there is some, and what fills a window beyond a crop when no glass colour is known."""
    return np.percentile(image.reshape(-1, 3), 99, axis=0)


def normalise(windows: torch.Tensor) -> torch.Tensor:
    """``(n, 3, h, w)`` RGB in 0–1 → network input: each channel over the window's 99th percentile."""
    bright = torch.quantile(windows.flatten(2), 0.99, dim=2).clamp_min(0.05)[..., None, None]
    return ((windows / bright).clamp(0.0, 1.5) - 0.7) / 0.3


def windows_of(crops: list[np.ndarray], mpp: float, background: np.ndarray | None) -> torch.Tensor:
    """The network's windows of centred crops: resampled to :data:`INPUT_MPP` (antialiased), cut
    or padded (with ``background``, else each crop's brightest colour) to :data:`INPUT_PX`, 0–1."""
    out = torch.empty((len(crops), 3, INPUT_PX, INPUT_PX))
    for i, crop in enumerate(crops):
        x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float() / 255.0
        rows, cols = (max(1, round(n * mpp / INPUT_MPP)) for n in crop.shape[:2])
        x = F.interpolate(x, size=(rows, cols), mode="bilinear", antialias=True,
                                            align_corners=False)[0]
        fill = (np.asarray(background, np.float32) if background is not None else brightest_colour(crop)) / 255.0
        out[i] = torch.as_tensor(fill, dtype=torch.float32)[:, None, None]
        r0, c0 = (INPUT_PX - rows) // 2, (INPUT_PX - cols) // 2
        sr, sc = max(0, -r0), max(0, -c0)
        n_r, n_c = min(rows - sr, INPUT_PX - max(0, r0)), min(cols - sc, INPUT_PX - max(0, c0))
        out[i, :, max(0, r0):max(0, r0) + n_r, max(0, c0):max(0, c0) + n_c] = x[:, sr:sr + n_r, sc:sc + n_c]
    return out


@lru_cache(maxsize=4)
def load_learned_segmenter(path: str | None = None) -> tuple[UNet, dict[str, str]]:
    """The network of a weights file (default: the bundled one) in eval mode, and its card.

    Raises
    ------
    ModelNotFoundError
        When the file does not exist.
    ModelError
        When it is not a ``cellseg`` weights file of this network.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    file = Path(path).expanduser() if path else DEFAULT_WEIGHTS
    if not file.is_file():
        raise ModelNotFoundError(f"learned segmenter weights not found: {file}")
    try:
        with safe_open(str(file), "pt") as f:
            card = dict(f.metadata() or {})
        state = load_file(str(file))
        if card.get("name") != "cellseg":
            raise ModelError(f"{file} is not a learned-segmenter weights file (no 'cellseg' card)")
        module = UNet(tuple(json.loads(card["widths"])))
        module.load_state_dict(state)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"cannot load learned segmenter weights {file}: {exc}") from exc
    module.eval()
    return module, card


def learned_version(path: str | None = None) -> str:
    """``learned-<version>`` of a weights file (recorded in the cell table)."""
    return f"learned-{load_learned_segmenter(path)[1].get('version', '?')}"


def _keep_centre(cell: np.ndarray, nucleus: np.ndarray, min_cell_px: float,
                 min_nucleus_px: float) -> tuple[np.ndarray, np.ndarray]:
    """The connected cell part at (or nearest to) the crop's centre, holes filled, with its nucleus;
    none when either is smaller than its minimum (platelets and their clumps)."""
    from scipy import ndimage as ndi

    parts, n = ndi.label(cell)
    if n == 0:
        return np.zeros(cell.shape, np.int32), np.zeros(cell.shape, np.int32)
    centre = (cell.shape[0] // 2, cell.shape[1] // 2)
    label = int(parts[centre])
    if not label:
        rr, cc = np.nonzero(parts)
        k = int(np.argmin(np.hypot(rr - centre[0], cc - centre[1])))
        label = int(parts[rr[k], cc[k]])
    one = ndi.binary_fill_holes(parts == label)
    core = nucleus & one
    if one.sum() < min_cell_px or core.sum() < max(min_nucleus_px, 1):
        return np.zeros(cell.shape, np.int32), np.zeros(cell.shape, np.int32)
    return one.astype(np.int32), core.astype(np.int32)


def segment_crops_learned(
    crops: list[np.ndarray],
    mpp: float,
    background: np.ndarray | None,
    model: str | None = None,
    min_cell_um2: float = 28.0,
    min_nucleus_um2: float = 14.0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Whole-cell and nucleus labels (1 = the centred cell) of each crop, by the learned network.

    Parameters
    ----------
    crops
        ``(rows, cols, 3)`` uint8 RGB crops, each centred on a candidate.
    mpp
        µm/px of the crops.
    background
        Glass colour (RGB 0–255), used to pad windows beyond a crop.
    model
        Weights file (default: the bundled ``cellseg``).
    min_cell_um2, min_nucleus_um2
        A cell or nucleus smaller than this is no white cell (a platelet or a clump of them); the
        classical backend's limits (``ClassicalParams.cell_min_area_um2``, ``cell_min_nucleus_um2``).

    Returns
    -------
    list of (cells, nuclei)
        int32 labels on each crop's grid; empty where the centre holds no white cell.
    """
    if not crops:
        return []
    module, _ = load_learned_segmenter(model)
    with torch.inference_mode():  # a few windows at a time: the activations stay small
        probs = torch.cat([torch.softmax(module(normalise(windows_of(crops[s:s + _BATCH], mpp, background))), 1)
                           for s in range(0, len(crops), _BATCH)])
    out = []
    for i, crop in enumerate(crops):
        rows, cols = crop.shape[:2]
        # crop pixel centres in the window's normalised coordinates (-1..1 over INPUT_PX px)
        ys = (np.arange(rows) + 0.5 - rows / 2) * mpp / INPUT_MPP / (INPUT_PX / 2)
        xs = (np.arange(cols) + 0.5 - cols / 2) * mpp / INPUT_MPP / (INPUT_PX / 2)
        grid = torch.from_numpy(np.stack(np.meshgrid(xs, ys), -1)[None].astype(np.float32))
        p = F.grid_sample(probs[i:i + 1], grid, mode="bilinear",
                                            padding_mode="zeros", align_corners=False)[0].numpy()
        cell = p[1] + p[2] > 0.5
        nucleus = p[2] >= np.maximum(p[0], p[1])
        out.append(_keep_centre(cell, nucleus, min_cell_um2 / mpp**2, min_nucleus_um2 / mpp**2))
    return out
