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

from hemascope.errors import DataError, HemascopeError, InvalidInputError
from hemascope.models.registry import LoadedModel
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report
from hemascope.slide.bag import check_single_scale, instances_noun
from hemascope.train.bags_data import Bag, bag_from_cells

BAG_KINDS: tuple[str, ...] = ("cells", "image", "result")

#: Cell-image folders classified together in one batched run by :func:`build_bags`.
FOLDER_BATCH = 64


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
    mpp: float,
    device: str,
    cancel: CancelToken | None,
) -> list[tuple[pd.DataFrame, np.ndarray]]:
    """Classify the cell crops of several folders (one scale) in one batched run; one result each."""
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
        # bag models were fitted on the plain per-cell calls: no per-batch re-decision here
        adapt_priors=False,
        blast_min=0.0,
    )
    embeddings = result.embeddings
    assert embeddings is not None  # asked for with return_embeddings=True
    position = {name: i for i, name in enumerate(result.table["path"])}
    reasons = dict(result.failed)
    shift = getattr(result, "domain_shift", None)  # the classifier's domain-shift guard, if any
    out = []
    for folder, group in zip(folders, paths, strict=True):
        rows = [position[str(p)] for p in group if str(p) in position]
        if not rows:
            why = "; ".join(f"{p.name}: {reasons.get(str(p), '?')}" for p in group[:3])
            raise DataError(f"bag {folder.name!r} has no readable cell images ({why})")
        table = result.table.iloc[rows].reset_index(drop=True)
        table.insert(0, "id", np.arange(len(table)))
        table.attrs["domain_shift"] = shift
        out.append((table, embeddings[rows]))
    return out


def _cells_from_fields(
    paths: Sequence[Path],
    model: LoadedModel,
    mpp: float | None,
    device: str,
    segmenter: str,
    cancel: CancelToken | None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Cells found in several field images (one bag), classified and embedded; ``image`` column."""
    tables, embeddings = [], []
    for path in paths:
        table, emb = _cells_from_image(Path(path), model, mpp, device, segmenter, cancel)
        if len(table):
            tables.append(table.assign(image=str(path)))
            embeddings.append(emb)
    if not tables:
        empty = pd.DataFrame({"class": pd.Series(dtype=str)})
        return empty, np.zeros((0, 1), np.float32)
    table = pd.concat(tables, ignore_index=True)
    table["id"] = np.arange(len(table))
    return table, np.concatenate(embeddings)


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
            slide, cells, model, device=device, return_embeddings=True, cancel=cancel,
            adapt_priors=False, blast_min=0.0,
        )
        table = pd.concat([cells, pred.table], axis=1)
        table["mpp"] = float(slide.mpp)
        assert pred.embeddings is not None  # asked for with return_embeddings=True
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
    input_mode: str = "auto",
    cancel: CancelToken | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Classified cells and embeddings of one bag source.

    Parameters
    ----------
    source : str or Path
        A folder of images, a field/slide image, or a saved analysis (see :func:`bag_kind`).
    model : LoadedModel
        The cell model (from :func:`hemascope.models.load_model`).
    mpp : float, optional
        µm/px of the images; when None it is estimated (one value per bag folder, crops or fields,
        see :func:`~hemascope.train.bags_inputs.estimate_bag_mpp`; per image for a single image).
    device : str, optional
        Torch device for the cell model.
    segmenter : str, optional
        Segmentation backend for field images.
    input_mode : str, optional
        How a folder's images are read: ``"crops"`` (one cell each), ``"fields"`` (cells are found
        first) or ``"auto"`` (:func:`~hemascope.train.bags_inputs.input_kind`).
    cancel : optional
        Cancel token.

    Returns
    -------
    tuple
        ``(cells table with class (and mpp when known), embeddings (n_cells, D))``; the table's
        ``attrs`` say how it was read: ``input`` (crops/fields/analysis), ``mpp``, ``mpp_source``
        (given/estimated/per image/saved) and ``domain_shift`` (the classifier's guard, when it
        reports one).

    Raises
    ------
    DataError
        Missing source, unreadable images, a saved analysis without (matching) embeddings.
    InvalidInputError
        A bag mixing scales, or a scale that cannot be estimated (the message says to pass mpp).
    """
    from hemascope.classify.images import expand_image_paths
    from hemascope.train.bags_inputs import estimate_bag_mpp, input_kind

    path = Path(source)
    kind = bag_kind(path)
    info = {"input": "fields", "mpp": mpp, "mpp_source": "given" if mpp else "per image"}
    if kind == "cells":
        try:
            paths = expand_image_paths([path])
        except InvalidInputError as exc:
            raise DataError(f"bag {path.name!r}: {exc}") from None
        # one bag, one magnification: one scale for its crops or fields alike, and the one that
        # tells them apart (a 224-px field at 0.5 µm/px is 112 µm across, no crop)
        scale = mpp if mpp is not None else estimate_bag_mpp(paths)
        if mpp is None:
            info.update(mpp=scale, mpp_source="estimated")
        info["input"] = input_kind(paths, scale, input_mode)
        if info["input"] == "fields":
            table, emb = _cells_from_fields(paths, model, scale, device, segmenter, cancel)
        else:
            table, emb = _cells_from_folders([path], model, scale, device, cancel)[0]
    elif kind == "image" and input_mode == "crops":
        info.update(input="crops")
        scale = mpp if mpp is not None else estimate_bag_mpp([path])
        if mpp is None:
            info.update(mpp=scale, mpp_source="estimated")
        table, emb = _cells_from_folders([path], model, scale, device, cancel)[0]
    elif kind == "image":
        table, emb = _cells_from_image(path, model, mpp, device, segmenter, cancel)
    else:
        table, emb = _cells_from_result(path, model)
        info.update(input="analysis", mpp_source="saved")
    if "mpp" in table.columns and len(table):
        info["mpp"] = check_single_scale(table["mpp"].to_numpy(float), bag=f"bag {path.name}")
    table.attrs.update(info, domain_shift=table.attrs.get("domain_shift"))
    return table, emb


def _is_crop_folder(folder: Path, mpp: float | None, input_mode: str) -> bool:
    from hemascope.io.formats import PICTURE_SUFFIXES
    from hemascope.train.bags_inputs import input_kind

    images = [p for p in sorted(folder.rglob("*"))[:200] if p.suffix.lower() in PICTURE_SUFFIXES]
    return bool(images) and input_kind(images, mpp, input_mode) == "crops"


def build_bags(
    labels: pd.DataFrame,
    model: LoadedModel,
    *,
    instances: str = "blast",
    mpp: float | None = None,
    device: str = "auto",
    segmenter: str = "classical",
    input_mode: str = "auto",
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
        ``"all"``, ``"blast"`` or classes joined with ``+`` (the cells' classes are kept in
        the bag, so another selection can be made later with
        :func:`~hemascope.train.bags_data.restrict_bag`).
    mpp, device, segmenter, input_mode : optional
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
    if mpp is not None and input_mode != "fields":
        # folders of crops at one known scale are classified FOLDER_BATCH at a time: one batched
        # run, not one per bag ("crops" marks them; other folders are read one by one)
        kinds = [
            "crops" if k == "cells" and _is_crop_folder(s, mpp, input_mode) else k
            for k, s in zip(kinds, sources, strict=True)
        ]
    ready: dict[int, tuple[pd.DataFrame, np.ndarray]] = {}
    for i, (name, source) in enumerate(zip(names, sources, strict=True)):
        check_cancelled(cancel)
        label = labels["label"].iloc[i] if "label" in labels.columns else None
        try:
            if kinds[i] == "crops" and mpp is not None and i not in ready:  # crops: mpp known
                batch = [j for j in range(i, len(sources)) if kinds[j] == "crops"][:FOLDER_BATCH]
                results = _cells_from_folders(
                    [sources[j] for j in batch], model, mpp, device, cancel
                )
                ready.update(zip(batch, results, strict=True))
            if i in ready:
                table, emb = ready.pop(i)
            else:
                table, emb = cells_of_source(
                    source,
                    model,
                    mpp=mpp,
                    device=device,
                    segmenter=segmenter,
                    input_mode=input_mode,
                    cancel=cancel,
                )
        except HemascopeError as exc:
            raise type(exc)(f"bag {name!r}: {exc}") from None
        noun = instances_noun(instances)
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
