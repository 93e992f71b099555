"""Turn a bag source on disk into classified cells and their embeddings.

A source is one of (see :func:`bag_kind`):

``cells``
    a folder of single-cell images (the AML_Hehr / SCEMILA layout), classified and embedded by
    :func:`hemascope.classify.classify_images`;
``image``
    a field image or a whole slide: cells are found with :func:`hemascope.segment.find_cells`,
    then classified and embedded on the slide by :func:`hemascope.classify.predict_cells`;
``result``
    an analysed slide saved by the pipeline (:class:`hemascope.results.SlideResult`), whose cell
    table and embeddings are reused when they come from the same cell model.

:func:`build_bags` does this for every row of a labels table (:func:`read_bag_labels`) and keeps
the cells the bag model uses (blasts or all cells).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hemascope.classes import RESEARCH_USE_ONLY
from hemascope.errors import DataError, HemascopeError, InvalidInputError
from hemascope.models.registry import LoadedModel
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report
from hemascope.slide.bag import check_single_scale
from hemascope.slide.bag_model import BagModel, BagModelCard
from hemascope.train.bags_data import Bag, bag_from_cells

BAG_KINDS: tuple[str, ...] = ("cells", "image", "result")

#: Cell-image folders classified together in one batched run by :func:`build_bags`.
FOLDER_BATCH = 64

#: Relative spread allowed between per-image scale *estimates* of one cell folder.
ESTIMATED_SCALE_TOLERANCE = 0.25


def bag_kind(path: str | Path) -> str:
    """``"result"`` for a saved analysis, ``"cells"`` for another folder, ``"image"`` for a file.

    Raises
    ------
    DataError
        If the path does not exist.
    """
    from hemascope.results import COMPLETE_MARKER

    path = Path(path)
    if path.is_dir():
        return "result" if (path / COMPLETE_MARKER).exists() else "cells"
    if path.is_file():
        return "image"
    raise DataError(f"bag source {path} does not exist")


def _cells_from_folders(
    folders: Sequence[Path],
    model: LoadedModel,
    mpp: float | None,
    device: str,
    cancel: CancelToken | None,
) -> list[tuple[pd.DataFrame, np.ndarray]]:
    """Classify the cell images of several folders in one batched run; one result per folder."""
    from hemascope.classify import classify_images
    from hemascope.classify.images import expand_image_paths

    paths = []
    for folder in folders:
        try:
            paths.append(expand_image_paths([folder]))
        except InvalidInputError as exc:
            raise DataError(f"bag {folder.name!r}: {exc}") from None
    result = classify_images(
        [p for group in paths for p in group],
        model,
        mpp,
        device=device,
        return_embeddings=True,
        cancel=cancel,
    )
    position = {name: i for i, name in enumerate(result.table["path"])}
    reasons = dict(result.failed)
    out = []
    for folder, group in zip(folders, paths, strict=True):
        rows = [position[str(p)] for p in group if str(p) in position]
        if not rows:
            why = "; ".join(f"{p.name}: {reasons.get(str(p), '?')}" for p in group[:3])
            raise DataError(f"bag {folder.name!r} has no readable cell images ({why})")
        table = result.table.iloc[rows].reset_index(drop=True)
        if mpp is None:
            _check_estimated_scale(table["mpp"].to_numpy(float), folder, ESTIMATED_SCALE_TOLERANCE)
            table = table.drop(columns="mpp")
        table.insert(0, "id", np.arange(len(table)))
        out.append((table, result.embeddings[rows]))
    return out


def _check_estimated_scale(values: np.ndarray, folder: Path, tolerance: float) -> None:
    low, high = float(np.min(values)), float(np.max(values))
    if low > 0 and (high - low) / low > tolerance:
        raise InvalidInputError(
            f"bag {folder} mixes scales: estimated {low:.3g} to {high:.3g} µm/px across its images; "
            "give the scale with mpp if they really share one"
        )


def _cells_from_image(
    path: Path,
    model: LoadedModel,
    mpp: float | None,
    device: str,
    segmenter: str,
    cancel: CancelToken | None,
) -> tuple[pd.DataFrame, np.ndarray]:
    from hemascope.classify import predict_cells
    from hemascope.io import open_slide

    slide = open_slide(path, mpp=mpp)
    try:
        from hemascope.segment import find_cells

        seg = find_cells(slide, mpp=mpp, segmenter=segmenter, cancel=cancel)
        if slide.mpp is None and seg.mpp is not None:
            slide.close()
            slide = open_slide(path, mpp=seg.mpp)
        cells = seg.cells
        if len(cells) == 0:
            return cells.assign(**{"class": pd.Series(dtype=str)}), np.zeros((0, 1), np.float32)
        pred = predict_cells(
            slide, cells, model, device=device, return_embeddings=True, cancel=cancel
        )
        table = pd.concat([cells, pred.table], axis=1)
        table["mpp"] = float(slide.mpp)
        return table, pred.embeddings
    finally:
        slide.close()


def _cells_from_result(path: Path, model: LoadedModel) -> tuple[pd.DataFrame, np.ndarray]:
    from hemascope.results import SlideResult

    result = SlideResult.load(path)
    if result.embeddings is None:
        raise DataError(f"analysed slide {path} was saved without cell embeddings")
    provenance = json.dumps(result.provenance)
    if "sha256" in provenance and model.card.sha256[:12] not in provenance:
        raise DataError(
            f"analysed slide {path} was classified with another cell model than {model.label}; "
            "analyse it again with that model"
        )
    table = result.cells.copy()
    if "mpp" not in table.columns and result.slide.get("mpp"):
        table["mpp"] = float(result.slide["mpp"])
    return table, result.embeddings


def cells_of_source(
    source: str | Path,
    model: LoadedModel,
    *,
    mpp: float | None = None,
    device: str = "auto",
    segmenter: str = "classical",
    cancel: CancelToken | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Classified cells and embeddings of one bag source.

    Parameters
    ----------
    source : str or Path
        A cell-image folder, a field/slide image, or a saved analysis (see :func:`bag_kind`).
    model : LoadedModel
        The cell model (from :func:`hemascope.models.load_model`).
    mpp : float, optional
        µm/px of the images (estimated when None).
    device : str, optional
        Torch device for the cell model.
    segmenter : str, optional
        Segmentation backend for image sources.
    cancel : optional
        Cancel token.

    Returns
    -------
    tuple
        ``(cells table with class (and mpp when known), embeddings (n_cells, D))``.

    Raises
    ------
    DataError
        Missing source, unreadable images, a saved analysis without (matching) embeddings.
    InvalidInputError
        A bag mixing scales.
    """
    path = Path(source)
    kind = bag_kind(path)
    if kind == "cells":
        table, emb = _cells_from_folders([path], model, mpp, device, cancel)[0]
    elif kind == "image":
        table, emb = _cells_from_image(path, model, mpp, device, segmenter, cancel)
    else:
        table, emb = _cells_from_result(path, model)
    if "mpp" in table.columns and len(table):
        check_single_scale(table["mpp"].to_numpy(float), bag=f"bag {path.name}")
    return table, emb


def build_bags(
    labels: pd.DataFrame,
    model: LoadedModel,
    *,
    instances: str = "blast",
    mpp: float | None = None,
    device: str = "auto",
    segmenter: str = "classical",
    skip_empty: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[list[Bag], list[tuple[str, str]]]:
    """Build one :class:`Bag` per row of a labels table.

    Parameters
    ----------
    labels : pandas.DataFrame
        Columns ``bag``, ``source`` and (optional) ``label``, as from
        :func:`~hemascope.train.bags_data.read_bag_labels`.
    model : LoadedModel
        The cell model whose embeddings form the bags.
    instances : str, optional
        ``"blast"`` or ``"all"``.
    mpp, device, segmenter : optional
        See :func:`cells_of_source`.
    skip_empty : bool, optional
        Leave out (and list) bags with no cells in them instead of raising.
    progress, cancel : optional
        See :mod:`hemascope.progress`.

    Returns
    -------
    tuple
        ``(bags, skipped)`` where ``skipped`` lists ``(bag, reason)``.

    Raises
    ------
    DataError
        On a bag that cannot be read, or an empty bag when ``skip_empty`` is False (the message
        names the bag).
    """
    bags: list[Bag] = []
    skipped: list[tuple[str, str]] = []
    names: Sequence[str] = labels["bag"].astype(str).tolist()
    sources = [Path(s) for s in labels["source"]]
    kinds = [bag_kind(s) for s in sources]
    ready: dict[int, tuple[pd.DataFrame, np.ndarray]] = {}
    for i, (name, source) in enumerate(zip(names, sources, strict=True)):
        check_cancelled(cancel)
        label = labels["label"].iloc[i] if "label" in labels.columns else None
        if kinds[i] == "cells" and i not in ready:
            # cell folders are classified FOLDER_BATCH at a time: one batched run, not one per bag
            batch = [j for j in range(i, len(sources)) if kinds[j] == "cells"][:FOLDER_BATCH]
            results = _cells_from_folders([sources[j] for j in batch], model, mpp, device, cancel)
            ready.update(zip(batch, results, strict=True))
        try:
            if i in ready:
                table, emb = ready.pop(i)
                if "mpp" in table.columns:
                    check_single_scale(table["mpp"].to_numpy(float), bag=f"bag {name}")
            else:
                table, emb = cells_of_source(
                    source, model, mpp=mpp, device=device, segmenter=segmenter, cancel=cancel
                )
        except HemascopeError as exc:
            raise type(exc)(f"bag {name!r}: {exc}") from None
        noun = "blasts" if instances == "blast" else "cells"
        if len(table) == 0:
            bag = None
        else:
            bag = bag_from_cells(name, table, emb, instances=instances, label=label)
        if bag is None or len(bag.features) == 0:
            reason = f"no {noun} found"
            if not skip_empty:
                raise DataError(
                    f"bag {name!r} is empty: {reason} (use skip_empty to leave such bags out)"
                )
            skipped.append((name, reason))
        else:
            bags.append(bag)
        report(progress, i + 1, len(names), f"bag {name}")
    return bags, skipped


def check_cell_model(bag_card: BagModelCard, cell_model: LoadedModel) -> None:
    """Refuse a cell model other than the one whose embeddings the bag model was trained on.

    Raises
    ------
    InvalidInputError
        If the sha256 (or, without one, the name) differs.
    """
    card = cell_model.card
    same = (
        card.sha256 == bag_card.embedding_sha256
        if bag_card.embedding_sha256 and card.sha256
        else card.name == bag_card.embedding_model
    )
    if not same:
        raise InvalidInputError(
            f"bag model {bag_card.name!r} was trained on embeddings of cell model "
            f"{bag_card.embedding_model!r} v{bag_card.embedding_version or '?'}, not {cell_model.label}"
        )


def predict_bag_sources(
    sources: Sequence[str | Path],
    bag_model: BagModel,
    cell_model: LoadedModel,
    *,
    mpp: float | None = None,
    min_blasts: int | None = None,
    device: str = "auto",
    segmenter: str = "classical",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> pd.DataFrame:
    """Predict the label of each bag source; one row per bag, going on past unreadable bags.

    Parameters
    ----------
    sources : sequence of str or Path
        Field/slide images, cell-image folders or saved analyses.
    bag_model : BagModel
        The bag model.
    cell_model : LoadedModel
        The cell model it was trained on (checked).
    mpp, device, segmenter : optional
        See :func:`cells_of_source`.
    min_blasts : int, optional
        Abstention threshold (default: the card's).
    progress, cancel : optional
        See :mod:`hemascope.progress`.

    Returns
    -------
    pandas.DataFrame
        Columns ``bag``, ``predicted``, ``prob_<class>``..., ``n_cells``, ``n_blasts``,
        ``n_instances``, ``abstained``, ``reason``, ``model``, ``notice``. A bag that cannot be
        read abstains with the error as its reason.
    """
    from hemascope.slide.subtype import predict_subtype

    check_cell_model(bag_model.card, cell_model)
    card = bag_model.card
    rows = []
    for i, source in enumerate(sources):
        check_cancelled(cancel)
        row: dict = {"bag": str(source), "predicted": ""}
        row.update({f"prob_{c}": float("nan") for c in card.classes})
        try:
            table, emb = cells_of_source(
                source, cell_model, mpp=mpp, device=device, segmenter=segmenter, cancel=cancel
            )
            n_blasts = int((table["class"].astype(str) == "blast").sum()) if len(table) else 0
            if len(table) == 0:
                emb = np.zeros((0, card.embedding_dim), np.float32)
            pred = predict_subtype(table, emb, bag_model, min_blasts=min_blasts)
            row["predicted"] = pred.label or ""
            row.update({f"prob_{c}": p for c, p in pred.probabilities.items()})
            row.update(
                n_cells=len(table),
                n_blasts=n_blasts,
                n_instances=pred.n_instances,
                abstained=pred.abstained,
                reason=pred.reason,
            )
        except HemascopeError as exc:
            row.update(n_cells=0, n_blasts=0, n_instances=0, abstained=True, reason=f"error: {exc}")
        row.update(model=card.display_name, notice=RESEARCH_USE_ONLY)
        rows.append(row)
        report(progress, i + 1, len(sources), Path(source).name)
    return pd.DataFrame(rows)
