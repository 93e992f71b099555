"""Bags for slide-level training: labels CSVs, bag sources, cell embeddings and a feature cache.

A bag is the set of cells of one patient / slide / field with one label. Three layouts are read:

(a) a folder of single-cell images per bag (the AML_Hehr / SCEMILA layout), embedded with
    :func:`hemascope.classify.classify_images`;
(b) a field or slide image per bag: cells are found first (:func:`hemascope.segment.find_cells`),
    then classified and embedded on the slide (:func:`hemascope.classify.predict_cells`);
(c) an analysed slide (a :class:`hemascope.results.SlideResult` folder with its cell table and
    embeddings).

All three give ``(cells table with a class column, embeddings)``; the bag keeps the cells chosen by
:func:`hemascope.slide.bag.select_instances`. Computed bags can be cached in one ``.npz`` file
(plain arrays, no pickle) so several bag models are trained on the same embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from hemascope.classes import label_key
from hemascope.csv_files import read_csv_file
from hemascope.errors import DataError, InvalidInputError
from hemascope.slide.bag import (
    check_embeddings,
    check_single_scale,
    parse_instances,
    select_instances,
)

BAG_COLUMNS = ("bag", "patient_id", "patient", "slide", "path", "image", "folder")
LABEL_COLUMNS = ("label", "bag_label", "diagnosis", "subtype", "class")


@dataclass
class Bag:
    """One labelled bag of cell embeddings.

    Attributes
    ----------
    name : str
        Bag name (as in the labels CSV).
    features : numpy.ndarray
        ``(n_instances, D)`` float32 embeddings of the cells in the bag.
    label : str or None
        Bag label (None when unknown, e.g. at prediction time).
    n_cells : int
        Cells found before selecting the bag's instances.
    n_blasts : int
        Cells classified as blasts.
    mpp : float
        µm/px of the source (NaN when unknown).
    cell_classes : numpy.ndarray, optional
        Class the cell model gave each cell of ``features`` (lets :func:`restrict_bag` re-select
        the instances of a bag of all cells without embedding again).
    cell_names : numpy.ndarray, optional
        Name of each cell of ``features`` (its image path for cell folders), for interpretation.
    """

    name: str
    features: np.ndarray
    label: str | None = None
    n_cells: int = 0
    n_blasts: int = 0
    mpp: float = float("nan")
    cell_classes: np.ndarray | None = None
    cell_names: np.ndarray | None = None


def canonical_label(value: str, classes: Sequence[str]) -> str:
    """Map a label onto ``classes`` ignoring case and punctuation (``PML_RARA`` → ``PML::RARA``).

    Raises
    ------
    DataError
        If the label matches no class.
    """
    lookup = {label_key(c): c for c in classes}
    try:
        return lookup[label_key(value)]
    except KeyError:
        raise DataError(f"unknown class {value!r}; expected one of {list(classes)}") from None


def bag_targets(bags: Sequence[Bag], classes: Sequence[str]) -> np.ndarray:
    """Integer class index of each bag's label.

    Raises
    ------
    DataError
        If a bag has no label or a label outside ``classes``.
    """
    index: dict[str | None, int] = {c: i for i, c in enumerate(classes)}  # None: no label
    bad = sorted({str(b.label) for b in bags if b.label not in index})
    if bad:
        raise DataError(f"bag labels {bad[:5]} are not among the classes {list(classes)}")
    return np.array([index[b.label] for b in bags], dtype=np.int64)


def _pick(columns: Sequence[str], wanted: str | None, options: Sequence[str], what: str) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise DataError(f"labels CSV has no column {wanted!r} (columns: {list(columns)})")
        return wanted
    for name in options:
        if name in columns:
            return name
    raise DataError(
        f"labels CSV needs a {what} column (one of {list(options)}); it has {list(columns)}"
    )


def read_bag_labels(
    csv_path: str | Path,
    *,
    classes: Sequence[str] | None = None,
    bag_column: str | None = None,
    label_column: str | None = None,
    root: str | Path | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Read a labels CSV: one row per bag, its source path and its label.

    Parameters
    ----------
    csv_path : str or Path
        The CSV (e.g. SCEMILA's ``metadata.csv`` with ``patient_id`` and ``bag_label``).
    classes : sequence of str, optional
        Allowed classes in output order; labels are matched ignoring case and punctuation.
        Default: the sorted distinct labels.
    bag_column, label_column : str, optional
        Column names (default: detected from :data:`BAG_COLUMNS` / :data:`LABEL_COLUMNS`).
    root : str or Path, optional
        Folder the bag names are relative to (default: the CSV's folder).

    Returns
    -------
    tuple
        ``(table, classes)``; the table has columns ``bag``, ``label``, ``source`` and, when the
        CSV has one, ``split`` (train/val/test).

    Raises
    ------
    DataError
        If the CSV is missing or empty, names a bag that does not exist under ``root``, repeats a
        bag, or holds a label outside ``classes``.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"labels CSV {csv_path} does not exist")
    table = read_csv_file(csv_path, dtype=str).dropna(how="all")
    if table.empty:
        raise DataError(f"labels CSV {csv_path} has no rows")
    bag_col = _pick(table.columns, bag_column, BAG_COLUMNS, "bag")
    label_col = _pick(table.columns, label_column, LABEL_COLUMNS, "label")
    keep = [bag_col, label_col] + (["split"] if "split" in table.columns else [])
    table = table[keep].rename(columns={bag_col: "bag", label_col: "label"})
    if "split" in table.columns:
        table["split"] = table["split"].fillna("").str.strip().str.lower()
        odd = sorted(set(table["split"]) - {"train", "val", "test"})
        if odd:
            raise DataError(
                f"labels CSV {csv_path}: split must be train, val or test, got {odd[:5]}"
            )
    if table["label"].isna().any() or table["bag"].isna().any():
        raise DataError(f"labels CSV {csv_path} has rows without a bag name or label")
    duplicated = table["bag"][table["bag"].duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"labels CSV {csv_path} lists bags more than once: {duplicated[:5]}")
    if classes is None:
        classes = sorted(table["label"].unique())
    classes = list(classes)
    unknown = sorted({v for v in table["label"] if label_key(v) not in {label_key(c) for c in classes}})
    if unknown:
        raise DataError(
            f"labels CSV {csv_path} has unknown classes {unknown[:5]}; expected {classes}"
        )
    table["label"] = [canonical_label(v, classes) for v in table["label"]]
    base = Path(root) if root is not None else csv_path.parent
    table["source"] = [str(base / b) for b in table["bag"]]
    missing = [
        b for b, s in zip(table["bag"], table["source"], strict=True) if not Path(s).exists()
    ]
    if missing:
        raise DataError(
            f"labels CSV {csv_path} names {len(missing)} bag(s) not found under {base}: {missing[:5]}"
        )
    return table.reset_index(drop=True), classes


def bag_from_cells(
    name: str,
    cells: pd.DataFrame,
    embeddings: np.ndarray,
    *,
    instances: str,
    label: str | None = None,
) -> Bag:
    """Build a :class:`Bag` from a classified cell table and its embeddings.

    Parameters
    ----------
    name : str
        Bag name.
    cells : pandas.DataFrame
        Classified cells (``class``; ``mpp`` when known, which must be one scale).
    embeddings : numpy.ndarray
        ``(n_cells, D)`` embeddings aligned with ``cells``.
    instances : str
        ``"blast"`` or ``"all"`` (see :func:`hemascope.slide.bag.select_instances`).
    label : str, optional
        The bag label.

    Returns
    -------
    Bag
        The bag (possibly with zero instances: callers decide whether that is an error).
    """
    features = check_embeddings(embeddings, len(cells))
    mpp = float("nan")
    if "mpp" in cells.columns:
        found = check_single_scale(cells["mpp"].to_numpy(dtype=float), bag=f"bag {name!r}")
        mpp = float("nan") if found is None else found
    has_class = "class" in cells.columns
    n_blasts = int((cells["class"].astype(str) == "blast").sum()) if has_class else 0
    chosen = select_instances(cells, instances)
    names = next((cells[c] for c in ("path", "id") if c in cells.columns), None)
    return Bag(
        name=name,
        features=features[chosen],
        label=label,
        n_cells=len(cells),
        n_blasts=n_blasts,
        mpp=mpp,
        cell_classes=cells["class"].astype(str).to_numpy()[chosen] if has_class else None,
        cell_names=None if names is None else names.astype(str).to_numpy()[chosen],
    )


def restrict_bag(bag: Bag, instances: str) -> Bag:
    """The bag of the cells of ``bag`` that ``instances`` selects (by their ``cell_classes``).

    Parameters
    ----------
    bag : Bag
        A bag of every cell (``instances="all"``) that kept its cells' classes.
    instances : str
        See :func:`hemascope.slide.bag.parse_instances`.

    Returns
    -------
    Bag
        ``bag`` itself for ``"all"``, else a new bag holding only the selected cells (possibly none).

    Raises
    ------
    DataError
        If a selection is asked of a bag without per-cell classes.
    """
    wanted = parse_instances(instances)
    if wanted is None:
        return bag
    if bag.cell_classes is None:
        raise DataError(
            f"bag {bag.name!r} kept no per-cell classes: cannot select its {instances} cells; "
            "embed it again (delete the cache)"
        )
    keep = np.isin(bag.cell_classes, wanted)
    return replace(
        bag,
        features=bag.features[keep],
        cell_classes=bag.cell_classes[keep],
        cell_names=None if bag.cell_names is None else bag.cell_names[keep],
    )


def save_bags(path: str | Path, bags: Sequence[Bag], *, meta: dict[str, str] | None = None) -> Path:
    """Cache bags in one ``.npz`` (plain arrays, no pickle), written atomically.

    ``meta`` (e.g. the cell model's sha256 and the instance selection) is stored with them and
    checked by :func:`load_bags`.
    """
    import io
    import json

    from hemascope.files import atomic_write_bytes

    if not bags:
        raise DataError("no bags to save")
    buffer = io.BytesIO()
    np.savez(
        buffer,
        features=np.concatenate([b.features for b in bags]).astype(np.float32),
        sizes=np.array([len(b.features) for b in bags], dtype=np.int64),
        names=np.array([b.name for b in bags], dtype=str),
        labels=np.array(["" if b.label is None else b.label for b in bags], dtype=str),
        n_cells=np.array([b.n_cells for b in bags], dtype=np.int64),
        n_blasts=np.array([b.n_blasts for b in bags], dtype=np.int64),
        mpp=np.array([b.mpp for b in bags], dtype=np.float64),
        meta=np.array(json.dumps(meta or {}, sort_keys=True)),
        allow_pickle=False,  # plain numbers and strings
        **_per_cell_arrays(bags),
    )
    return atomic_write_bytes(path, buffer.getvalue())


def _per_cell_arrays(bags: Sequence[Bag]) -> dict[str, np.ndarray]:
    """``cell_classes`` / ``cell_names`` of all bags, concatenated, when every bag has them."""
    out = {}
    for key in ("cell_classes", "cell_names"):
        values = [getattr(b, key) for b in bags]
        if all(v is not None for v in values):
            out[key] = np.concatenate([np.asarray(v, dtype=str) for v in values]).astype(str)
    return out


def load_bags(path: str | Path, *, expect: dict[str, str] | None = None) -> list[Bag]:
    """Read bags cached by :func:`save_bags`.

    Raises
    ------
    DataError
        If the file is not a bag cache, or its ``meta`` differs from ``expect`` on any key given
        (e.g. the bags were embedded with another cell model).
    """
    import json

    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {name: npz[name] for name in npz.files}  # read each array once
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read bag cache {path}: {exc}") from None
    required = {"features", "sizes", "names", "labels", "n_cells", "n_blasts", "mpp"}
    if not required <= set(data):
        raise DataError(f"{path} is not a bag cache (missing {sorted(required - set(data))})")
    offsets = np.concatenate([[0], np.cumsum(data["sizes"])]).astype(np.int64)
    if offsets[-1] != len(data["features"]):
        raise DataError(f"bag cache {path} is inconsistent")
    stored = json.loads(str(data["meta"])) if "meta" in data else {}
    for key, value in (expect or {}).items():
        if stored.get(key) != value:
            raise DataError(
                f"bag cache {path} was made with {key}={stored.get(key)!r}, not {value!r}; "
                "delete it or use another cache file"
            )
    return [
        Bag(
            name=str(data["names"][i]),
            features=data["features"][offsets[i] : offsets[i + 1]],
            label=str(data["labels"][i]) or None,
            n_cells=int(data["n_cells"][i]),
            n_blasts=int(data["n_blasts"][i]),
            mpp=float(data["mpp"][i]),
            cell_classes=_slice(data, "cell_classes", offsets, i),
            cell_names=_slice(data, "cell_names", offsets, i),
        )
        for i in range(len(data["sizes"]))
    ]


def _slice(data: dict, key: str, offsets: np.ndarray, i: int) -> np.ndarray | None:
    return data[key][offsets[i] : offsets[i + 1]] if key in data else None


def splits_from_table(bags: Sequence[Bag], table: pd.DataFrame) -> dict[str, list[Bag]]:
    """Train/val/test lists of ``bags`` as the table's ``split`` column says (by its ``bag`` column)."""
    split_of = dict(zip(table["bag"].astype(str), table["split"], strict=True))
    return {
        part: [b for b in bags if split_of.get(b.name) == part] for part in ("train", "val", "test")
    }


def split_bags(
    bags: Sequence[Bag], fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), *, seed: int = 0
) -> tuple[list[Bag], list[Bag], list[Bag]]:
    """Stratified train/validation/test split of bags by label, reproducible from ``seed``.

    Raises
    ------
    InvalidInputError
        If the fractions are not three non-negative numbers summing to 1.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise InvalidInputError(f"fractions must be 3 numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: tuple[list[Bag], list[Bag], list[Bag]] = ([], [], [])
    labels = sorted({str(b.label) for b in bags})
    for label in labels:
        members = [b for b in bags if str(b.label) == label]
        order = rng.permutation(len(members))
        n_train = int(round(fractions[0] * len(members)))
        n_val = int(round(fractions[1] * len(members)))
        for rank, i in enumerate(order):
            part = 0 if rank < n_train else 1 if rank < n_train + n_val else 2
            parts[part].append(members[i])
    return parts
