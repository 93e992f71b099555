"""Fixtures of the pipeline tests: tiny real models (random weights) and small synthetic smears."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hemascope.classes import AML_SUBTYPES, CELL_CLASSES

# The machine is shared: one torch thread per test process keeps the tests fast and predictable.
torch.set_num_threads(1)

SLIDE_SIZE = 512


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    """A tiny cell model and a tiny bag model (randomly initialised, saved as safetensors + cards)."""
    from hemascope.models import ModelCard, build_model, save_model
    from hemascope.models.mil import build_bag_model

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    card = ModelCard(name="tiny-wbc", version="0.0.1", classes=list(CELL_CLASSES), input_size=16, mpp=1.0,
                     arch_params={"widths": [4, 8, 8, 8]})
    cell = save_model(build_model("cellnet", len(CELL_CLASSES), card.arch_params), card, root / "cell")
    bag_card = ModelCard(kind="bag", name="tiny-bag", version="0.0.1", classes=list(AML_SUBTYPES), architecture="attention",
                            embedding_model="tiny-wbc", embedding_dim=8, input_size=16, mpp=1.0, instances="all",
                            min_instances=3, arch_params={"hidden": 8}, demo=True)
    bag = save_model(build_bag_model("attention", 8, len(AML_SUBTYPES), hidden=8), bag_card, root / "bag")
    return {"cell_model": str(cell), "slide_model": str(bag)}


@pytest.fixture(scope="session")
def smear_paths(tmp_path_factory) -> list[Path]:
    """Three small synthetic smears: pyramidal OME-TIFFs with 256 px tiles (4 regions each), 0.5 µm/px."""
    from hemascope.io import write_pyramidal_tiff
    from hemascope.synthetic import SmearSpec, render_field

    root = tmp_path_factory.mktemp("smears")
    paths = []
    for seed in range(3):
        path = root / f"smear{seed}.ome.tif"
        spec = SmearSpec(size=(SLIDE_SIZE, SLIDE_SIZE), mpp=0.5, seed=seed, subtype="NPM1", wbc_density=400.0)
        image, _ = render_field(spec)
        write_pyramidal_tiff(path, image, mpp=spec.mpp, tile_size=256, n_levels=2)
        paths.append(path)
    return paths


@pytest.fixture()
def config(tiny_models):
    """Settings that run the whole pipeline with the tiny models in 4 regions per slide."""
    from hemascope.config import AnalysisConfig

    return AnalysisConfig(region_size=256, device="cpu", batch_size=32, min_cells=1, **tiny_models)
