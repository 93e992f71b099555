"""Fixtures of the napari room: small synthetic slides and results made by the tests themselves.

Without an X server (no ``DISPLAY``/``WAYLAND_DISPLAY``) and without Xvfb for pytest-xvfb to start,
Qt runs on its ``offscreen`` platform: the widget tests (docks on a ``ViewerModel``) still run, and
the tests that need an OpenGL canvas (``make_napari_viewer``) are skipped with the reason. ``.ci/run``
installs Xvfb, so CI runs them all.
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from hemascope.classes import CELL_CLASSES

MPP = 0.5

#: True when no display can be had: Qt is put on its offscreen platform (no OpenGL canvas).
HEADLESS = (
    sys.platform.startswith("linux")
    and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    and shutil.which("Xvfb") is None
)
if HEADLESS:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

NO_GL_REASON = ("needs an OpenGL canvas: no DISPLAY and no Xvfb here (install xvfb, as .ci/run does, "
                "to run it); the docks' own tests run on Qt's offscreen platform")


def pytest_collection_modifyitems(config, items):
    """Skip the tests that need a real napari canvas when no display exists (see the module doc)."""
    if not (HEADLESS and os.environ.get("QT_QPA_PLATFORM") == "offscreen"):
        return
    skip = pytest.mark.skip(reason=NO_GL_REASON)
    for item in items:
        if "make_napari_viewer" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


def _draw_cells(shape: tuple[int, int], centres: np.ndarray, radius: float = 10) -> np.ndarray:
    """A white RGB field with a purple disc at each ``(row, col)`` centre."""
    image = np.full((*shape, 3), 235, dtype=np.uint8)
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    for r, c in centres:
        disc = (rr - r) ** 2 + (cc - c) ** 2 <= radius**2
        image[disc] = (120, 60, 150)
    return image


@pytest.fixture
def draw_cells():
    """``draw_cells(shape, centres, radius)``: a white field with purple discs (RGB uint8)."""
    return _draw_cells


@pytest.fixture
def cell_table() -> pd.DataFrame:
    """Cells of every class on a grid, with probabilities, in level-0 px and µm."""
    rng = np.random.default_rng(0)
    n = 36
    rows = 40 + (np.arange(n) // 6) * 70.0
    cols = 40 + (np.arange(n) % 6) * 70.0
    classes = [CELL_CLASSES[i % len(CELL_CLASSES)] for i in range(n)]
    probs = rng.dirichlet(np.ones(len(CELL_CLASSES)), size=n)
    table = pd.DataFrame({"id": np.arange(n), "row": rows, "col": cols, "y_um": rows * MPP,
                          "x_um": cols * MPP, "area_um2": np.full(n, 80.0), "class": classes,
                          "confidence": probs.max(axis=1)})
    for j, cls in enumerate(CELL_CLASSES):
        table[f"prob_{cls}"] = probs[:, j]
    return table


@pytest.fixture
def slide(cell_table):
    """An in-memory slide with a disc under every cell of ``cell_table``."""
    from hemascope.io import slide_from_array

    image = _draw_cells((460, 460), cell_table[["row", "col"]].to_numpy())
    return slide_from_array(image, mpp=MPP, name="field.png")


@pytest.fixture
def result(cell_table):
    """A :class:`SlideResult` of ``cell_table`` with a differential, subtype and smear mask."""
    from hemascope.files import to_jsonable
    from hemascope.results import SlideResult
    from hemascope.slide.differential import differential_count

    diff = to_jsonable(differential_count(cell_table["class"], min_cells=10))
    subtype = {"model": "demo-aml", "abstained": True, "reason": "too few blasts",
               "probabilities": {"NPM1": 0.4, "control": 0.6}, "label": None,
               "top_cells": [8, 17, 3], "top_indices": [8, 17, 3], "top_weights": [0.5, 0.3, 0.2]}
    mask = np.zeros((58, 58), dtype=bool)
    mask[2:55, 2:55] = True
    return SlideResult(cells=cell_table, differential=diff, subtype=subtype, smear_mask=mask,
                       smear_mask_downsample=8.0,
                       slide={"path": None, "shape": (460, 460), "mpp": MPP},
                       provenance={"models": {"cell": {"name": "wbc", "version": "1"}},
                                   "segmenter": "classical"})


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    """A tiny cell model and bag model with random weights (real safetensors files and cards)."""
    import torch

    from hemascope.classes import AML_SUBTYPES
    from hemascope.models import ModelCard, build_model, save_model
    from hemascope.models.mil import build_bag_model

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    card = ModelCard(name="tiny-wbc", version="0.0.1", classes=list(CELL_CLASSES), input_size=16,
                     mpp=1.0, arch_params={"widths": [4, 8, 8, 8]})
    cell = save_model(build_model("cellnet", len(CELL_CLASSES), card.arch_params), card, root / "cell")
    bag_card = ModelCard(kind="bag", name="tiny-bag", version="0.0.1", classes=list(AML_SUBTYPES),
                            architecture="attention", embedding_model="tiny-wbc", embedding_dim=8,
                            input_size=16, mpp=1.0, instances="all", min_instances=3,
                            arch_params={"hidden": 8}, demo=True)
    bag = save_model(build_bag_model("attention", 8, len(AML_SUBTYPES), hidden=8), bag_card,
                         root / "bag")
    return {"cell_model": str(cell), "slide_model": str(bag)}
