import pytest
import torch

from hemascope.errors import InvalidInputError
from hemascope.models.mil import GatedAttentionMIL, build_bag_model


@pytest.mark.parametrize("architecture", ["attention", "mean", "instance"])  # grouped: test_grouped
def test_shapes_and_padding_invariance(architecture):
    torch.manual_seed(0)
    model = build_bag_model(architecture, 8, 3, hidden=16).eval()
    bag = torch.randn(1, 5, 8)
    padded = torch.cat([bag, torch.randn(1, 4, 8) * 100], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 4])
    logits, weights = model(bag)
    logits_p, weights_p = model(padded, mask)
    assert logits.shape == (1, 3) and weights.shape == (1, 5, 3)
    # padding never changes the answer and gets no weight
    assert torch.allclose(logits, logits_p, atol=1e-5)
    assert torch.all(weights_p[0, 5:] == 0)
    assert torch.allclose(weights_p.sum(1), torch.ones(1, 3), atol=1e-5)


def test_attention_has_one_head_per_class_and_is_permutation_invariant():
    torch.manual_seed(0)
    model = GatedAttentionMIL(8, 4, hidden=16).eval()
    bag = torch.randn(1, 7, 8)
    logits, attention = model(bag)
    assert attention.shape == (1, 7, 4)
    # heads differ from each other (per-class attention)
    assert not torch.allclose(attention[0, :, 0], attention[0, :, 1])
    perm = torch.randperm(7)
    logits_perm, attention_perm = model(bag[:, perm])
    assert torch.allclose(logits, logits_perm, atol=1e-5)
    assert torch.allclose(attention[0, perm], attention_perm[0], atol=1e-6)


def test_instance_model_bag_probability_is_mean_cell_probability():
    torch.manual_seed(0)
    model = build_bag_model("instance", 8, 3, hidden=16).eval()
    bag = torch.randn(1, 6, 8)
    logits, _ = model(bag)
    expected = torch.softmax(model.cell_logits(bag), -1).mean(1)
    assert torch.allclose(torch.softmax(logits, -1), expected, atol=1e-5)


def test_build_rejects_unknown():
    with pytest.raises(InvalidInputError):
        build_bag_model("transformer", 8, 3)
    with pytest.raises(InvalidInputError):
        build_bag_model("mean", 8, 1)


def test_ensemble_averages_members_and_masks_padding():
    torch.manual_seed(0)
    model = build_bag_model("mean", 8, 3, hidden=16, members=3).eval()
    assert len(model.members) == 3
    bag = torch.randn(1, 5, 8)
    logits, weights = model(bag)
    expected = torch.stack([m(bag)[0] for m in model.members]).mean(0)
    assert torch.allclose(logits, expected, atol=1e-6) and weights.shape == (1, 5, 3)
    padded = torch.cat([bag, torch.randn(1, 2, 8) * 100], dim=1)
    logits_p, _ = model(padded, torch.tensor([[True] * 5 + [False] * 2]))
    assert torch.allclose(logits, logits_p, atol=1e-5)
    with pytest.raises(InvalidInputError):
        build_bag_model("mean", 8, 3, members=0)
