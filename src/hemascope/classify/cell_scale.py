"""µm/px of a single-cell picture from how its white cell looks to the cell model.

Red cells are the ruler of :func:`hemascope.segment.estimate_mpp`, but a crop or close-up of one
white cell shows a few pieces of them or none. The cell itself is a second ruler: the bundled
``wbc`` network has seen thousands of white cells at its 0.5 µm/px, and the features of a crop
made at a wrong µm/px say how wrong (a neutrophil twice too large, granules too coarse). A small
regression head (``wbc-scale.safetensors``, :data:`HEAD_FILE`; trained by
``scripts/train_scale_head.py`` on PBC and DeepAPL **training** cells only, made at 0.5-2× their
true µm/px, half of them under the lab colour/optics augmentation and some cut to close-ups) reads
the frozen network's features and logits and predicts ``log(claimed / true µm/px)``.

:func:`cell_scale` asks it at a coarse grid of claimed scales (:data:`GRID`), keeps the answer
most nearby claims agree on, then asks twice more at :data:`OFFSETS` around it and takes the
median answer. The spread of those answers is its confidence (one cell's size is a loose ruler:
alone it is within ±15 % on 74-96 % of held-out crops of three labs, BENCHMARKS.md).

:func:`picture_scale` is the zero-configuration scale of single-cell pictures (``classify``,
``train cells``, ``predict-bags``, and ``segment``/``analyze`` of pictures): the red-cell estimate
and the cell's, combined (:func:`combine`); a field (a picture wider than
:data:`~hemascope.classify.framing.FIELD_FACTOR` model fields at either estimate) keeps the
red-cell estimate, whose many red cells measure it better than one picture centre — unless that
estimate is unsure and a white cell lies off the centre (a one-cell field): that cell is read.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hemascope.classify.crops import MIN_CELL_IMAGE_UM, cell_image_to_crop, crops_to_tensor
from hemascope.classify.framing import is_field
from hemascope.errors import (
    HemascopeError,
    InvalidInputError,
    ModelIntegrityError,
    ModelNotFoundError,
)
from hemascope.models.registry import LoadedModel
from hemascope.segment.scale import ScaleEstimate, estimate_mpp

#: The bundled head's file, beside its backbone's weights.
HEAD_FILE = "wbc-scale.safetensors"
#: Hidden units, hidden layers and averaged members of the head (the file's metadata says which it has).
HEAD_HIDDEN, HEAD_DEPTH, HEAD_MEMBERS = 128, 2, 3
#: Claimed µm/px of the first look (12 steps of ×1.4 from 0.03 to 1.2: 100x oil to 10x).
GRID = tuple(float(v) for v in np.exp(np.linspace(np.log(0.03), np.log(1.2), 12)))
#: Claims around the current answer of each refinement (the head was trained on 0.5-2×).
OFFSETS = tuple(float(v) for v in np.exp(np.linspace(np.log(0.65), np.log(1.55), 7)))
#: Claims within this factor of an answer are asked whether they agree with it ...
_NEAR = 1.8
#: ... and agree when their answers lie within this factor of it.
_AGREE = 1.2
#: Refinements around the first answer.
_ROUNDS = 2
#: Least nucleus (µm across, at the red-cell estimate) of a cell read off the picture's centre: a
#: white cell's whole nucleus (all lobes) is 6-12 µm; platelets, specks and single lobes are less
#: (3.8-4.5 µm: a speck in a big cell's cytoplasm, BENCHMARKS.md "One-cell fields without --mpp").
READ_NUCLEUS_UM = 5.0
#: Red-cell and cell answers further apart than this are not averaged.
_TOGETHER = 1.5
#: Answers outside this range (µm/px: within ×1.2 of the grid's ends) are no answer: the head
#: was asked beyond what it has seen.
PLAUSIBLE_MPP = (0.036, 1.0)
#: An unsure red-cell estimate gives way to the cell's; this many times apart or more, the cell's
#: answer keeps the lower confidence of the two (both are often wrong there: a smudge read as a
#: huge cell, pieces of red cells), so that a batch's confidence-weighted median leans on others.
_GIVE_WAY = 3.0
#: A confident red-cell answer that makes a picture of at most this many px (short side) a field is
#: checked against the cell model's reading of the picture's centre: crops and close-ups (224-576
#: px in public sets) whose granules or pieces of red cells read as red cells 2-10 times too large
#: (BENCHMARKS.md, "A confident field that is one cell"). Larger pictures are a camera's fields.
CHECKED_FIELD_PX = 640
#: Confidence of the cell's answer at no spread: always flagged (below
#: :data:`~hemascope.segment.scale.MIN_CONFIDENCE`): one cell's size is a loose ruler, and even its
#: most self-consistent answers are > 25 % off in 1-2 % of held-out crops (BENCHMARKS.md).
CELL_CONFIDENCE = 0.45
#: Spread (standard deviation of log µm/px) of the last refinement's answers at which the cell's
#: confidence has fallen to 0 (linearly from :data:`CELL_CONFIDENCE` at no spread).
NO_CONFIDENCE_SPREAD = 0.2


class MeanOf(torch.nn.Module):
    """The mean answer of several networks (an ensemble of heads trained with different seeds)."""

    def __init__(self, members: Sequence[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The members' answers to ``x``, averaged."""
        return torch.stack([m(x) for m in self.members]).mean(0)


def head_network(
    n_inputs: int, hidden: int = HEAD_HIDDEN, depth: int = HEAD_DEPTH, members: int = HEAD_MEMBERS
) -> torch.nn.Module:
    """The scale head: standardised features and logits → ``depth`` layers of ``hidden`` ReLU units →
    log factor; ``members`` such networks averaged (:class:`MeanOf`) when more than one."""

    def mlp() -> torch.nn.Sequential:
        layers: list[torch.nn.Module] = []
        for k in range(depth):
            layers += [torch.nn.Linear(n_inputs if k == 0 else hidden, hidden), torch.nn.ReLU()]
        return torch.nn.Sequential(*layers, torch.nn.Linear(hidden, 1))

    return mlp() if members == 1 else MeanOf([mlp() for _ in range(members)])


@dataclass
class CellScaleModel:
    """The cell network (a verified :class:`~hemascope.models.registry.LoadedModel`) and its scale head."""

    loaded: LoadedModel
    head: torch.nn.Module
    mean: torch.Tensor
    std: torch.Tensor

    def log_factors(self, image: np.ndarray, claims: np.ndarray,
                    centre: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Predicted ``log(claim / true µm/px)`` of ``image`` made at each claim it is large enough for
        (the crop centred on ``centre``, default the picture's centre).

        Returns
        -------
        (claims, log_factors)
            The claims used and the head's answers.
        """
        card = self.loaded.card
        crops, used = [], []
        for claim in claims:
            try:
                crops.append(cell_image_to_crop(image, float(claim), card, centre=centre))
            except InvalidInputError:
                continue  # smaller than a cell at this claim
            used.append(float(claim))
        if not crops:
            return np.zeros(0), np.zeros(0)
        with torch.inference_mode():
            x = crops_to_tensor(np.stack(crops), card, self.loaded.device)
            logits, emb = self.loaded.module.forward_with_embedding(x)  # type: ignore[operator]
            z = (torch.cat([emb.float(), logits.float()], dim=1).cpu() - self.mean) / self.std
            return np.asarray(used), self.head(z)[:, 0].numpy().astype(float)


@functools.lru_cache(maxsize=1)
def load_cell_scale_model() -> CellScaleModel:
    """The bundled ``wbc`` network on the CPU with its scale head (:func:`read_scale_head`)."""
    from hemascope.models.registry import BUNDLED_DIR, load_model

    return read_scale_head(BUNDLED_DIR / HEAD_FILE, load_model("wbc", "cpu"))


def read_scale_head(path: str | Path, loaded: LoadedModel) -> CellScaleModel:
    """Read a scale head and check it belongs to the network ``loaded`` (a verified ``LoadedModel``).

    Raises
    ------
    ModelNotFoundError
        The head's file is missing.
    ModelIntegrityError
        The head was trained on other weights than ``loaded``'s (its metadata's
        ``backbone_sha256``), or its tensors do not fit.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"the scale head {path} is missing (reinstall hemascope, or pass --mpp)")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
    if meta.get("backbone_sha256") != loaded.card.sha256:
        raise ModelIntegrityError(
            f"{path.name} was trained on other {loaded.card.name} weights "
            f"({str(meta.get('backbone_sha256', '?'))[:12]}…) than these ({loaded.card.sha256[:12]}…)"
        )
    try:
        head = head_network(tensors["mean"].numel(), int(meta.get("hidden", HEAD_HIDDEN)),
                            int(meta.get("depth", 1)), int(meta.get("members", 1)))
        head.load_state_dict({k.removeprefix("net."): v for k, v in tensors.items() if k.startswith("net.")})
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ModelIntegrityError(f"{path.name}: not a scale head ({exc})") from None
    return CellScaleModel(loaded, head.eval(), tensors["mean"], tensors["std"])


def _first_answer(model: CellScaleModel, image: np.ndarray, centre: tuple[float, float] | None) -> float | None:
    """log µm/px that most claims near it agree on, from the :data:`GRID` look."""
    claims, factors = model.log_factors(image, np.asarray(GRID), centre)
    if len(claims) == 0:
        return None
    answers = np.log(claims) - factors
    best, best_score = None, -1.0
    for answer in answers:
        near = np.abs(np.log(claims) - answer) < np.log(_NEAR)
        agree = near & (np.abs(answers - answer) < np.log(_AGREE))
        score = agree.sum() / max(int(near.sum()), 1) + 0.01 * agree.sum()
        if score > best_score:
            best, best_score = float(answer), float(score)
    return best


def cell_scale(image: np.ndarray, model: CellScaleModel | None = None,
               centre: tuple[float, float] | None = None) -> ScaleEstimate:
    """µm/px of a single-cell picture (its cell in the centre) from its cell's appearance.

    Parameters
    ----------
    image
        RGB uint8 picture of one white cell (a crop, a tight box or a close-up).
    model
        The network and head (default :func:`load_cell_scale_model`).
    centre
        ``(row, col)`` of the cell when it is not the picture's centre (a one-cell field).

    Returns
    -------
    ScaleEstimate
        With ``cues``: ``path`` = ``"cell_model"``, ``cell_spread`` (standard deviation of the
        last refinement's answers, log µm/px).

    Raises
    ------
    InvalidInputError
        The picture is smaller than a cell at every claim or at the answer, or the answer lies
        outside :data:`PLAUSIBLE_MPP` (smudged cells can read as ten times too large).
    """
    model = model or load_cell_scale_model()
    log_mpp = _first_answer(model, image, centre)
    if log_mpp is None:
        raise InvalidInputError("the picture is too small to hold a cell at any scale")
    spread = 1.0
    for _ in range(_ROUNDS):
        claims, factors = model.log_factors(image, np.exp(log_mpp) * np.asarray(OFFSETS), centre)
        if len(claims) == 0:
            break
        answers = np.log(claims) - factors
        log_mpp, spread = float(np.median(answers)), float(np.std(answers))
    if not PLAUSIBLE_MPP[0] <= np.exp(log_mpp) <= PLAUSIBLE_MPP[1]:
        raise InvalidInputError(f"the cell model reads {np.exp(log_mpp):.3g} µm/px, outside the range it knows")
    if min(image.shape[:2]) * np.exp(log_mpp) < MIN_CELL_IMAGE_UM:  # a picture of a cell holds one
        raise InvalidInputError(f"the cell model reads {np.exp(log_mpp):.3g} µm/px, at which the picture "
                                "is smaller than a cell")
    confidence = CELL_CONFIDENCE * float(np.clip(1.0 - spread / NO_CONFIDENCE_SPREAD, 0.0, 1.0))
    return ScaleEstimate(
        float(np.exp(log_mpp)), confidence, {"path": "cell_model", "cell_spread": spread},
        f"from the white cell's appearance to the cell model (spread {spread:.2f})",
    )


def combine(red: ScaleEstimate, cell: ScaleEstimate) -> ScaleEstimate:
    """One estimate from the red cells' and the white cell's.

    Two answers within :data:`_TOGETHER` of each other are averaged (geometric mean). A confident
    red-cell estimate stays confident when the cell agrees within :data:`_AGREE`; further apart
    the result is flagged, and beyond :data:`_TOGETHER` it is the red cells' answer (the cell's
    is then the more often wrong one). An unsure red-cell estimate further than :data:`_AGREE`
    from the cell's gives way to it, however far apart (the red-cell answer of a crop is most
    often wrong where it is unsure: pieces of red cells, granules, a nucleus taken for a red
    cell), and so does a picture without red cells (``path`` ``"white_cell"``: one nucleus's size
    taken for a fixed one, a cruder reading of the same cell than the cell model's). Chosen on
    held-out crops of three labs (BENCHMARKS.md, "Scale from the cell"; the last two rules on the
    validation cells of two, "The cell's reading where the red cells are unsure"). The result
    keeps the red cells' ``cues`` (their ``path`` too) and adds both answers (``cell_mpp``,
    ``red_cell_mpp``).
    """
    cues = {**red.cues, "cell_mpp": cell.mpp, "cell_spread": cell.cues.get("cell_spread"), "red_cell_mpp": red.mpp,
            "red_cell_confidence": red.confidence}
    apart = abs(float(np.log(red.mpp / cell.mpp)))
    both = float(np.sqrt(red.mpp * cell.mpp))
    if red.cues.get("path") == "white_cell":  # no red cells: the cell model reads that nucleus and more
        return ScaleEstimate(cell.mpp, cell.confidence, cues,
                             f"{cell.reason}; no red cells (the nucleus's size alone: {red.mpp:.4g} µm/px)")
    if not red.low_confidence:
        if apart < np.log(_AGREE):
            return ScaleEstimate(both, red.confidence, cues, f"red cells ({red.mpp:.4g}) and the white cell "
                                 f"({cell.mpp:.4g} µm/px) agree")
        mpp = both if apart < np.log(_TOGETHER) else red.mpp
        return ScaleEstimate(mpp, min(red.confidence, cell.confidence), cues,
                             f"red cells ({red.mpp:.4g}) and the white cell ({cell.mpp:.4g} µm/px) disagree")
    if apart < np.log(_AGREE):
        return ScaleEstimate(both, max(red.confidence, cell.confidence), cues,
                             f"red cells and the white cell agree, neither sure ({red.mpp:.4g}, {cell.mpp:.4g} µm/px)")
    confidence = cell.confidence if apart < np.log(_GIVE_WAY) else min(red.confidence, cell.confidence)
    return ScaleEstimate(cell.mpp, confidence, cues, f"{cell.reason}; red cells unsure ({red.mpp:.4g} µm/px)")


def picture_scale(image: np.ndarray) -> ScaleEstimate:
    """The zero-configuration µm/px of a picture: red cells, and for one-cell pictures the cell too.

    Parameters
    ----------
    image
        RGB uint8 picture (a crop, close-up or field).

    Returns
    -------
    ScaleEstimate
        :func:`combine` of :func:`hemascope.segment.estimate_mpp` and :func:`cell_scale` for
        single-cell pictures, the red-cell estimate for fields — unless it is unsure and the
        picture shows a white cell off its centre (:func:`off_centre_cell`, a one-cell field):
        that cell is read and combined. A picture of at most :data:`CHECKED_FIELD_PX` that only
        a confident red-cell answer makes a field is read at its centre too, and combined when
        the cell model does not read it as a field.

    Raises
    ------
    InvalidInputError
        When :func:`~hemascope.segment.estimate_mpp` finds neither red cells nor a nucleus (then
        there is no white cell to read either).
    """
    red = estimate_mpp(image)  # raises when there is neither a red cell nor a nucleus: no cell to read either
    model = load_cell_scale_model()
    card = model.loaded.card
    red_field = not red.low_confidence and is_field(image.shape, red.mpp, card)
    if red_field and min(image.shape[:2]) > CHECKED_FIELD_PX:
        return red
    centre = None if red_field else off_centre_cell(red)
    try:
        cell = cell_scale(image, model, centre)
    except HemascopeError:
        return red
    if centre is None and is_field(image.shape, cell.mpp, card):  # the centre of a field: no cell to read
        return red
    return combine(red, cell)


def off_centre_cell(red: ScaleEstimate) -> tuple[float, float] | None:
    """The white cell of a picture to read when it lies off the picture's centre (a one-cell field).

    The nucleus the red-cell estimate found (``lone_nucleus_centre``: wholly inside the picture,
    its cell not over the picture's centre), when it is a white cell's at that estimate (at least
    :data:`READ_NUCLEUS_UM` across, not a platelet); else ``None``: the picture's centre is read.
    """
    centre = red.cues.get("lone_nucleus_centre")
    if centre is None or red.cues["lone_nucleus_px"] * red.mpp < READ_NUCLEUS_UM:
        return None
    return centre


#: Pictures read to check a given µm/px, and the fewest readings that make the check.
CHECK_PICTURES, CHECK_MIN_READINGS = 24, 5
#: A given µm/px this many times away from the cells' median reading is doubted (the median of
#: five readings is within ±15 % in 88-100 % of draws on held-out sets: a ×1.4 gap is no noise).
CHECK_FACTOR = 1.4


def check_given_scale(pictures: Sequence[np.ndarray], mpp: float) -> str | None:
    """A warning when one-cell pictures look far from the µm/px the user gave, else ``None``.

    The given ``mpp`` is used regardless (it overrides every estimate); but a scale that is, e.g.,
    twice the truth (a downsampled export, a camera's binning) resamples every cell to half its
    size, and the user should hear of it.

    Parameters
    ----------
    pictures
        A sample of the run's pictures (RGB uint8; :data:`CHECK_PICTURES` are enough). Fields and
        pictures :func:`cell_scale` cannot read are skipped.
    mpp
        The µm/px given.

    Returns
    -------
    str or None
        One line naming the cells' median reading, when at least :data:`CHECK_MIN_READINGS`
        readings lie more than :data:`CHECK_FACTOR` times away from ``mpp``.
    """
    model = load_cell_scale_model()
    readings = []
    for image in pictures:
        try:
            reading = cell_scale(image, model).mpp
        except HemascopeError:
            continue
        if not is_field(image.shape, reading, model.loaded.card):  # at the given scale it may look like one
            readings.append(reading)
    if len(readings) < CHECK_MIN_READINGS:
        return None
    median = float(np.median(readings))
    if 1 / CHECK_FACTOR <= median / mpp <= CHECK_FACTOR:
        return None
    return (f"the cells of {len(readings)} pictures read {median:.3g} µm/px, {median / mpp:.2g}x the "
            f"{mpp:g} µm/px given: check --mpp (it was used as given)")


__all__ = ["HEAD_FILE", "cell_scale", "check_given_scale", "combine", "load_cell_scale_model", "picture_scale",
           "read_scale_head"]
