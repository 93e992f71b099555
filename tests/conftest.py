"""Session-wide synthetic data shared by every room's tests (made by the tests, never read from disk).

Fixtures
--------
small_smear
    A 2048 x 2048 peripheral-blood smear at 0.5 µm/px written as a pyramidal OME-TIFF (JPEG tiles of
    512, 3 levels) with its ground truth and instance masks: ``SyntheticSlide(path, truth, spec)``.
small_field
    A 1024 x 1024 in-memory field at 0.5 µm/px, smear to the edges, with truth and instance masks:
    ``SyntheticField(image, truth, spec)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest


class SyntheticSlide(NamedTuple):
    """A synthetic slide file, its :class:`~hemascope.synthetic.GroundTruth` and spec."""

    path: Path
    truth: object
    spec: object


class SyntheticField(NamedTuple):
    """An in-memory synthetic field ``(rows, cols, 3)`` uint8, its truth (with masks) and spec."""

    image: np.ndarray
    truth: object
    spec: object


@pytest.fixture(scope="session")
def small_smear(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSlide:
    """A 2k x 2k synthetic blood smear slide on disk (+ ``.cells.csv``, ``.truth.json``, ``.masks.tif``)."""
    from hemascope.synthetic import SmearSpec, make_smear

    spec = SmearSpec(size=(2048, 2048), mpp=0.5, seed=7, kind="blood", wbc_density=200.0)
    path = tmp_path_factory.mktemp("synthetic") / "small_smear.ome.tif"
    truth = make_smear(path, spec, masks=True)
    return SyntheticSlide(path, truth, spec)


@pytest.fixture(scope="session")
def small_field() -> SyntheticField:
    """A 1k x 1k synthetic blood field in memory, with instance masks in ``truth``."""
    from hemascope.synthetic import SmearSpec, render_field

    spec = SmearSpec(size=(1024, 1024), mpp=0.5, seed=11, wbc_density=300.0, glass_margin=0.0)
    image, truth = render_field(spec)
    return SyntheticField(image, truth, spec)


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """A randomly initialised tiny cell model saved as .safetensors + card; returns the card path."""
    from hemascope.models import ModelCard, build_model, save_model

    card = ModelCard(
        name="tiny",
        version="0.0.1",
        classes=["a", "b", "c"],
        input_size=16,
        mpp=1.0,
        arch_params={"widths": [4, 8, 8, 8]},
    )
    module = build_model("cellnet", 3, card.arch_params)
    return save_model(module, card, tmp_path / "models")
