"""Per-batch BatchNorm adaptation and the domain-shift guard on a tiny network."""

import numpy as np
import pytest
import torch

from hemascope.classify.adapt import adapt_batchnorm, batchnorm_layers
from hemascope.classify.shift import domain_shift, layer_divergences, shift_score
from hemascope.models import ModelCard, build_model


@pytest.fixture
def net():
    torch.manual_seed(0)
    module = build_model("cellnet", 3, {"widths": [4, 8, 8, 8]})
    module.train()
    with torch.no_grad():  # training statistics: N(0, 1) inputs
        for _ in range(20):
            module(torch.randn(64, 3, 16, 16))
    return module.eval()


def test_adapt_returns_a_copy_with_the_target_statistics(net):
    before = batchnorm_layers(net)[0].running_mean.clone()
    target = torch.randn(128, 3, 16, 16) * 2 + 3
    adapted = adapt_batchnorm(net, [target[:64], target[64:]], prior=0)
    assert adapted is not net
    assert torch.equal(batchnorm_layers(net)[0].running_mean, before)
    moved = batchnorm_layers(adapted)[0].running_mean
    assert (moved - before).abs().mean() > 0.5
    half = adapt_batchnorm(net, [target], prior=128)  # n = prior: half way
    mid = batchnorm_layers(half)[0].running_mean
    assert torch.allclose(mid, (before + moved) / 2, atol=0.05)
    assert adapt_batchnorm(net, [], prior=0) is net


def test_shift_score_grows_with_the_shift_and_the_verdict_uses_the_card(net):
    same, _ = layer_divergences(net, [torch.randn(256, 3, 16, 16)])
    shifted, n = layer_divergences(net, [torch.randn(256, 3, 16, 16) * 1.5 + 1.0])
    assert n == 256 and len(same) == len(batchnorm_layers(net))
    # the first layer reads the input itself: its divergence is the cleanest signal
    assert shift_score(shifted, layers=1) == pytest.approx(shifted[0])
    assert shift_score(shifted, layers=1) > 5 * shift_score(same, layers=1)
    card = ModelCard(name="t", version="0", classes=["a", "b", "c"], input_size=16, mpp=1.0)
    assert not domain_shift(1.0, 100, card).shifted  # no threshold: never fires
    card.domain_reference = {"threshold": 0.5}
    verdict = domain_shift(1.0, 100, card)
    assert verdict.shifted and "unlike the training data" in verdict.reason
    assert not domain_shift(0.1, 100, card).shifted
    few = domain_shift(1.0, 3, card)
    assert not few.shifted and np.isnan(few.score) and "too few" in few.reason
