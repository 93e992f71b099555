import pytest

from hemascope.models import ModelCard, build_model, save_model


@pytest.fixture
def tiny_model(tmp_path):
    """A randomly initialised tiny model saved as .safetensors + card; returns the card path."""
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
