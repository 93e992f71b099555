"""In-memory synthetic images: a whole field (:func:`render_field`) or one centred cell (:func:`render_cell`)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hemascope.classes import AML_SUBTYPES, CELL_CLASSES
from hemascope.errors import InvalidInputError
from hemascope.synthetic.cells import draw_cell
from hemascope.synthetic.morphology import plan_cell
from hemascope.synthetic.palette import palette_for
from hemascope.synthetic.render import WBC_OPACITY, SmearRenderer, finish, rbc_bank
from hemascope.synthetic.spec import MPP_RANGE, DomainShift, SmearSpec
from hemascope.synthetic.truth import GroundTruth, slide_label, truth_table

#: Largest field :func:`render_field` builds in memory (pixels); use ``make_smear`` beyond.
MAX_FIELD_PIXELS = 8192 * 8192
_CHUNK = 1024


@lru_cache(maxsize=8)
def _crop_rbc_bank(mpp: float) -> np.ndarray:
    """The red-cell sprites used around :func:`render_cell` crops (one bank per µm/px)."""
    return rbc_bank(32, mpp, seed=0)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode an RGB uint8 image as JPEG at ``quality`` (compression artefacts)."""
    import imagecodecs

    return imagecodecs.jpeg_decode(imagecodecs.jpeg_encode(image, level=int(quality)))


def render_field(spec: SmearSpec, *, masks: bool = True) -> tuple[np.ndarray, GroundTruth]:
    """Render a whole synthetic smear field in memory.

    Parameters
    ----------
    spec
        The smear (``spec.size`` at most :data:`MAX_FIELD_PIXELS`). A ``jpeg_quality`` in
        ``spec.shift`` applies a JPEG round trip to the image.
    masks
        Also fill ``truth.cell_labels`` and ``truth.nucleus_labels`` (int32 instance ids).

    Returns
    -------
    image, truth
        ``(rows, cols, 3)`` uint8 RGB and the ground truth. The pixels equal those of the slide
        ``make_smear`` writes for the same spec (before JPEG compression).

    Raises
    ------
    InvalidInputError
        For a field larger than :data:`MAX_FIELD_PIXELS`.
    """
    if not isinstance(spec, SmearSpec):
        raise InvalidInputError(f"spec must be a SmearSpec, got {type(spec).__name__}")
    rows, cols = spec.size
    if rows * cols > MAX_FIELD_PIXELS:
        raise InvalidInputError(
            f"a {rows}x{cols} field is too large to build in memory; write it with make_smear()"
        )
    renderer = SmearRenderer(spec)
    image = np.empty((rows, cols, 3), dtype=np.uint8)
    cell_lab = np.zeros((rows, cols), dtype=np.int32) if masks else None
    nuc_lab = np.zeros((rows, cols), dtype=np.int32) if masks else None
    for r in range(0, rows, _CHUNK):
        for c in range(0, cols, _CHUNK):
            h, w = min(_CHUNK, rows - r), min(_CHUNK, cols - c)
            reg = renderer.render(r, c, h, w, labels=masks)
            image[r : r + h, c : c + w] = reg.image
            if cell_lab is not None and nuc_lab is not None:  # masks
                assert reg.cell_labels is not None and reg.nucleus_labels is not None  # labels=masks
                cell_lab[r : r + h, c : c + w] = reg.cell_labels
                nuc_lab[r : r + h, c : c + w] = reg.nucleus_labels
    if spec.shift.jpeg_quality is not None:
        image = jpeg_roundtrip(image, spec.shift.jpeg_quality)
    truth = GroundTruth(truth_table(renderer), slide_label(spec), cell_lab, nuc_lab)
    return image, truth


def render_cell(
    cls: str,
    *,
    mpp: float,
    size: int,
    rng: np.random.Generator,
    shift: DomainShift | None = None,
    subtype: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one cell of class ``cls`` centred in a square crop, with red cells around it.

    Parameters
    ----------
    cls
        A class of :data:`hemascope.classes.CELL_CLASSES`.
    mpp
        µm per pixel of the crop.
    size
        Crop edge in pixels.
    rng
        Source of randomness (the same generator state gives the same crop).
    shift
        Stain/scanner variation (neutral if ``None``); its JPEG quality is applied too.
    subtype
        Genetic subtype deciding blast (and eosinophil) morphology; ``"control"`` if ``None``.

    Returns
    -------
    image, cell_mask, nucleus_mask
        ``(size, size, 3)`` uint8 and two ``(size, size)`` bool masks of the centred cell.

    Raises
    ------
    InvalidInputError
        For an unknown class or subtype, or a bad size or µm/px.
    """
    if cls not in CELL_CLASSES:
        raise InvalidInputError(f"unknown cell class {cls!r}; known: {CELL_CLASSES}")
    subtype = "control" if subtype is None else subtype
    if subtype not in AML_SUBTYPES:
        raise InvalidInputError(f"unknown subtype {subtype!r}; known: {AML_SUBTYPES}")
    if not (MPP_RANGE[0] <= mpp <= MPP_RANGE[1]) or not (8 <= int(size) <= 4096):
        raise InvalidInputError(f"need mpp in {MPP_RANGE} and 8 <= size <= 4096, got {mpp}, {size}")
    shift = shift or DomainShift()
    palette = palette_for(shift)
    size = int(size)
    center = (size // 2) * mpp
    plan = plan_cell(
        rng,
        cls,
        subtype,
        center + rng.uniform(-0.5, 0.5) * mpp,
        center + rng.uniform(-0.5, 0.5) * mpp,
    )
    sprite = draw_cell(plan, mpp, palette)
    # red cells on a random monolayer around the cell
    bank = _crop_rbc_bank(float(mpp))
    n = int(rng.poisson(0.55 * (size * mpp) ** 2 / 44.0))
    centers = rng.integers(0, size, (n, 2))
    far = np.hypot(*(centers * mpp - center).T) > plan.radius + 1.0
    rbc = SmearRenderer._stamp(
        bank, rng.integers(0, len(bank), int(far.sum())), centers[far], (size, size)
    )
    od = rbc[..., None] * palette["rbc"]
    cell = np.zeros((size, size), dtype=np.float32)
    nucleus = np.zeros((size, size), dtype=np.float32)
    sr, sc = sprite.origin
    n_s = sprite.cell.shape[0]
    a0, b0, a1, b1 = max(sr, 0), max(sc, 0), min(sr + n_s, size), min(sc + n_s, size)
    sub = (slice(a0 - sr, a1 - sr), slice(b0 - sc, b1 - sc))
    cell[a0:a1, b0:b1] = sprite.cell[sub]
    nucleus[a0:a1, b0:b1] = sprite.nucleus[sub]
    od *= (1.0 - WBC_OPACITY * cell)[..., None]
    od[a0:a1, b0:b1] += sprite.od[sub]
    od += palette.glass
    image = finish(
        np.exp(-od) * np.float32(255.0),
        shift,
        mpp,
        0,
        np.arange(size),
        np.arange(size),
        int(rng.integers(2**31)),
    )
    if shift.jpeg_quality is not None:
        image = jpeg_roundtrip(image, shift.jpeg_quality)
    return image, cell > 0.5, nucleus > 0.5
