"""Cell data sets: class-per-folder layouts or CSV lists, reproducible splits, crop banks.

A *cell table* is a DataFrame with one row per single-cell image: ``path``, ``class``, ``domain``
(scanner/centre/source; used for domain-balanced sampling), ``mpp`` (µm/px of the image) and an
optional ``group`` (e.g. the field a cell was cut from, so that a split never separates cells of
one field). A *crop bank* is all images resampled once to the model's µm/px, slightly larger than
the model input so that rotation and scale jitter never run out of pixels.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from hemascope.classify.crops import cell_image_to_crop
from hemascope.classify.framing import frame_picture
from hemascope.classify.images import estimate_picture_scales, framing_looks, read_cell_image
from hemascope.csv_files import read_csv_file
from hemascope.errors import DataError, HemascopeError
from hemascope.io.formats import PICTURE_SUFFIXES
from hemascope.io.limits import check_given_mpp
from hemascope.io.paths import files_under
from hemascope.models.card import ModelCard
from hemascope.progress import CancelToken, ProgressCallback, check_cancelled, report

TABLE_COLUMNS = ("path", "class", "domain", "mpp", "group")

#: Column names a cell CSV may use for its image path and its label (first match wins).
PATH_COLUMNS = ("path", "image", "image_path", "filepath", "file_path", "filename", "file", "img")
CLASS_COLUMNS = ("class", "label", "cell_type", "celltype", "class_name", "category", "type")


def read_cell_table(
    source: str | Path, *, mpp: float | None = None, domain: str | None = None
) -> pd.DataFrame:
    """Read a cell table from a class-per-folder directory or a CSV list.

    Parameters
    ----------
    source
        A directory whose sub-folders are class names holding images, in sub-folders of their
        own too (PBC, Matek, Acevedo layouts; hidden files skipped), or a CSV (any separator,
        :func:`hemascope.csv_files.read_csv_file`) with columns ``path`` and ``class`` (or
        ``label``) and optionally ``domain``, ``mpp`` and ``group``; relative paths are resolved
        against the CSV's folder (or, for files found only there, the working directory).
        The path and class columns may also be named as in :data:`PATH_COLUMNS` and
        :data:`CLASS_COLUMNS` (``image,label``, ``filename,cell_type``, ...).
    mpp
        µm/px of images without an ``mpp`` column; ``None``: estimated from their red cells,
        pooled over the pictures of one pixel size (:func:`estimate_picture_scales`).
    domain
        Domain of rows without a ``domain`` column (default: the source's name).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE_COLUMNS`, absolute paths; ``attrs["mpp_note"]`` says how the scale
        was estimated ("" when it was given).

    Raises
    ------
    DataError
        Missing source, empty data set, missing columns, or a scale that cannot be estimated.
    """
    source = Path(source)
    if source.is_dir():
        # every picture under a class folder, sub-folders included; hidden files and folders
        # (``._x.jpg`` beside pictures copied from a Mac) and ``__MACOSX`` are not classes or cells
        rows = [
            (str(f.resolve()), sub.name)
            for sub in sorted(p for p in source.iterdir() if p.is_dir())
            if not sub.name.startswith((".", "__MACOSX"))
            for f in files_under(sub, PICTURE_SUFFIXES)
        ]
        table = pd.DataFrame(rows, columns=["path", "class"])
    elif source.is_file():
        table = read_csv_file(source)
        table = table.rename(columns=_column_names(source, list(table.columns)))
        table["path"] = [_resolve(source, p) for p in table["path"].astype(str)]
    else:
        raise DataError(f"{source}: no such folder or CSV file")
    if table.empty:
        raise DataError(f"{source}: no labelled images found")
    table["class"] = table["class"].astype(str)
    if "domain" not in table.columns:
        table["domain"] = domain or source.stem
    note = ""
    if "mpp" not in table.columns:
        if mpp is None:
            table["mpp"], note = _estimated_mpp(source, table["path"])
        else:
            table["mpp"] = check_given_mpp(mpp)
    else:
        table["mpp"] = [check_given_mpp(m, f"{source}: mpp") for m in table["mpp"]]
    if "group" not in table.columns:
        table["group"] = table["path"]
    out = table[list(TABLE_COLUMNS)].reset_index(drop=True)
    out.attrs["mpp_note"] = note
    return out


def _resolve(csv: Path, path: str) -> str:
    """A CSV's image path: relative to the CSV's folder, or (when only there) to the working
    directory, as a CSV written beside a script often is."""
    beside = (csv.parent / path).resolve()
    if beside.exists() or not Path(path).exists():
        return str(beside)
    return str(Path(path).resolve())


def _column_names(source: Path, columns: list[str]) -> dict[str, str]:
    """``{CSV column: table column}`` for the path and class columns, matched without case.

    Raises
    ------
    DataError
        The CSV has no path or no class column.
    """
    lower = {c.strip().lower(): c for c in columns}
    renames = {}
    for name, options in (("path", PATH_COLUMNS), ("class", CLASS_COLUMNS)):
        found = next((lower[o] for o in options if o in lower), None)
        if found is None:
            raise DataError(
                f"{source}: CSV needs a {name} column (one of {list(options)}); it has {columns}"
            )
        renames[found] = name
    return renames


def _estimated_mpp(source: Path, paths: pd.Series) -> tuple[list[float], str]:
    """The µm/px of each picture, estimated from its red cells and pooled over the pictures of
    one pixel size, as ``hemascope classify`` does without ``--mpp``, and a line saying so.

    Raises
    ------
    DataError
        Some pictures could not be scaled (all are needed to train); the first is named.
    """
    scales = estimate_picture_scales(list(paths))
    failed = [(p, s) for p, s in zip(paths, scales, strict=True) if isinstance(s, HemascopeError)]
    if failed:
        path, error = failed[0]
        raise DataError(
            f"{source}: the µm/px of {len(failed)} of {len(paths)} images could not be estimated "
            f"(first: {path}: {error}); pass mpp (--mpp)"
        )
    values = [float(s) for s in scales]  # type: ignore[arg-type]
    flagged = sum(bool(getattr(s, "low_confidence", False)) for s in scales)
    note = (f"{source}: µm/px estimated from the pictures' red cells (median {np.median(values):.3g}, "
            f"{len(values)} pictures" + (f", {flagged} of them LOW CONFIDENCE" if flagged else "")
            + "); pass --mpp if you know it")
    return values, note


def split_table(
    table: pd.DataFrame, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> dict[str, pd.DataFrame]:
    """Stratified train/val/test split by ``group`` (cells of one group stay together).

    Each class's groups are shuffled with ``seed`` and cut by ``fractions``; a group is assigned
    by its majority class. The same table and seed always give the same split.

    Returns
    -------
    dict
        ``{"train": ..., "val": ..., "test": ...}``.
    """
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise DataError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    group_class = table.groupby("group")["class"].agg(lambda s: s.value_counts().index[0])
    assign: dict[str, str] = {}
    for _, groups in sorted(group_class.groupby(group_class), key=lambda kv: kv[0]):
        names = np.array(sorted(groups.index))
        rng.shuffle(names)
        n = len(names)
        n_train = int(round(fractions[0] * n))
        n_val = int(round(fractions[1] * n))
        for i, g in enumerate(names):
            assign[g] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    part = table["group"].map(assign)
    return {k: table[part == k].reset_index(drop=True) for k in ("train", "val", "test")}


def bank_size(card: ModelCard, margin: float = 1.5) -> int:
    """Side of the stored crops: the model input times ``margin`` (room for rotation/scale)."""
    return int(round(card.input_size * margin))


def load_crop_bank(
    table: pd.DataFrame,
    card: ModelCard,
    *,
    margin: float = 1.5,
    cache_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Read and resample every image of a cell table to the card's µm/px.

    Parameters
    ----------
    table
        A cell table (:func:`read_cell_table`).
    card
        Gives the target µm/px and input size.
    margin
        Stored crops are ``margin`` times the model input.
    cache_dir
        If given, the bank is cached there as ``.npy`` keyed by the table's paths and scales.

    Returns
    -------
    (crops, failed)
        ``(n, S, S, 3)`` uint8 in table order, and ``(path, reason)`` for unreadable images
        (their crops are white, so drop them from the table before training).
    """
    size = bank_size(card, margin)
    key = hashlib.sha256(
        "|".join(f"{p}:{m}" for p, m in zip(table["path"], table["mpp"], strict=True)).encode()
        + f"{card.mpp}:{size}:{sorted((card.preprocess or {}).items())}:framed-looked".encode()
    ).hexdigest()[:20]
    cached = Path(cache_dir) / f"bank_{key}.npy" if cache_dir else None
    if cached is not None and cached.is_file():
        return np.load(cached), []
    out = np.full((len(table), size, size, 3), 255, dtype=np.uint8)
    failed: list[tuple[str, str]] = []
    looks = framing_looks(list(table["path"]), [float(m) for m in table["mpp"]], card)
    for i, (path, mpp, look) in enumerate(zip(table["path"], table["mpp"], looks, strict=True)):
        if i % 256 == 0:
            check_cancelled(cancel)
            report(progress, i, len(table), "reading cells")
        try:
            image = read_cell_image(path)
            centre = frame_picture(image, float(mpp), card, look=look).centre
            out[i] = cell_image_to_crop(image, float(mpp), card, size=size, centre=centre)
        except HemascopeError as exc:
            failed.append((str(path), str(exc)))
    report(progress, len(table), len(table), "reading cells")
    if cached is not None and not failed:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".part.npy")
        np.save(tmp, out)
        tmp.replace(cached)
    return out, failed
