"""Shared fixtures of the slide-room tests."""

from __future__ import annotations

import pytest
import torch
from slide_helpers import CLASSES, DIM, make_bags

# The machine is shared: one thread per test process keeps the tests fast and predictable.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def trained_attention(tmp_path_factory):
    """A small attention-MIL bag model trained on synthetic bags and saved as a bag card."""
    from hemascope.models import ModelCard, save_model
    from hemascope.train.mil_training import train_bag_model

    bags = make_bags(45, seed=1)
    trained = train_bag_model(
        bags[:36],
        CLASSES,
        architecture="attention",
        val_bags=bags[36:],
        epochs=8,
        batch_size=4,
        lr=3e-3,
        arch_params={"hidden": 32},
        seed=0,
    )
    card = ModelCard(
        kind="bag",
        name="test-bags",
        version="0.1",
        classes=CLASSES,
        architecture="attention",
        arch_params=trained.arch_params,
        embedding_model="synthetic",
        embedding_dim=DIM,
        input_size=64,
        mpp=0.5,
        instances="blast",
        min_instances=3,
        temperature=trained.temperature,
        demo=True,
    )
    path = save_model(trained.module, card, tmp_path_factory.mktemp("bagmodel"))
    return path, trained
