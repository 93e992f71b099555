"""Class maps, class-first balanced sampling, lab augmentations and head rows copied by name."""

import numpy as np
import pandas as pd
import pytest
import torch

from hemascope.classify.stain import apply_map, reference, stain_map
from hemascope.models import ModelCard, build_model, save_model
from hemascope.train import AugmentConfig, augment_batch, balanced_weights
from hemascope.train.class_maps import DEEPAPL_CLASS_MAP, map_classes
from hemascope.train.lab_shift import tight_framing
from hemascope.train.restain import restain
from hemascope.train.warm_start import init_from_model


def test_deepapl_map_drops_unused_and_rejects_unknown_labels():
    t = pd.DataFrame({"class": ["promyelocyte", "band_neutrophil", "plasma_cell", "smudge"]})
    out = map_classes(t, DEEPAPL_CLASS_MAP)
    assert out["class"].tolist() == ["ig", "neutrophil", "smudge"]
    assert out["source_class"].tolist() == ["promyelocyte", "band_neutrophil", "smudge"]
    with pytest.raises(KeyError, match="martian"):
        map_classes(pd.DataFrame({"class": ["martian"]}), DEEPAPL_CLASS_MAP)


def test_class_first_balance_gives_a_one_class_source_no_extra_mass():
    labels = np.array([0] * 50 + [1] * 50 + [1] * 10)
    domains = np.array(["a"] * 100 + ["b"] * 10)  # b holds only class 1
    w = balanced_weights(labels, domains, class_first=True)
    assert w[labels == 0].sum() == pytest.approx(w[labels == 1].sum())
    assert w[domains == "b"].sum() == pytest.approx(w[labels == 1].sum() / 2)
    w_dom = balanced_weights(labels, domains)  # domain first: b gets half of everything
    assert w_dom[domains == "b"].sum() == pytest.approx(w_dom.sum() / 2)


def test_lab_augmentation_keeps_range_and_tight_framing_pads_with_glass():
    gen = torch.Generator().manual_seed(0)
    crops = torch.randint(0, 256, (8, 24, 24, 3), dtype=torch.uint8)
    x = augment_batch(
        crops, 16, [0.5] * 3, [0.25] * 3, AugmentConfig.lab(), gen, balance_white=True
    )
    assert x.shape == (8, 3, 16, 16) and torch.isfinite(x).all()
    img = torch.full((1, 3, 20, 20), 0.9)
    img[:, :, 8:12, 8:12] = 0.2
    img[:, 0, 0, 0] = 0.3  # a dark speck in the corner
    framed = tight_framing(img, 1.0, min_half=0.45, gen=gen)
    assert torch.allclose(framed[0, :, 0, 0], torch.full((3,), 0.9))
    assert torch.equal(framed[:, :, 8:12, 8:12], img[:, :, 8:12, 8:12])


def test_head_rows_copied_for_shared_class_names(tmp_path):
    torch.manual_seed(0)
    src_card = ModelCard(
        name="src",
        version="1",
        classes=["a", "b", "smudge"],
        input_size=16,
        mpp=1.0,
        arch_params={"widths": [4, 8, 8, 8]},
        preprocess={"pad": "background"},
    )
    src = build_model("cellnet", 3, src_card.arch_params)
    path = save_model(src, src_card, tmp_path)
    card = ModelCard(
        name="new",
        version="1",
        classes=["b", "a"],
        input_size=16,
        mpp=1.0,
        arch_params={"widths": [4, 8, 8, 8]},
    )
    module = build_model("cellnet", 2, card.arch_params)
    started = init_from_model(module, card, str(path))
    assert started.head_classes == ["b", "a"] and started.skipped == []
    assert torch.equal(module.head.weight[0], src.head.weight[1])
    assert torch.equal(module.head.weight[1], src.head.weight[0])
    assert started.source_card.preprocess == {"pad": "background"}


def test_restaining_takes_one_labs_nucleus_and_red_cell_colours_onto_anothers_and_keeps_the_glass():
    cv, tq = reference("cellavision"), reference("taleqani")
    glass = torch.tensor([0.95, 0.85, 0.75])  # peach glass, as PBC's
    pixels = torch.stack([glass, glass * torch.exp(-cv[0]), glass * torch.exp(-cv[1])])
    x = pixels.T.reshape(1, 3, 3, 1).expand(1, 3, 3, 40).contiguous()  # mostly glass
    x[..., 3:] = glass.view(1, 3, 1, 1)
    out = apply_map(x, stain_map(cv, tq).unsqueeze(0))
    assert torch.allclose(out[0, :, 0, 0], glass, atol=1e-4)  # the light stays
    assert torch.allclose(out[0, :, 1, 0], glass * torch.exp(-tq[0]), atol=1e-4)  # nucleus
    assert torch.allclose(out[0, :, 2, 0], glass * torch.exp(-tq[1]), atol=1e-4)  # red cell
    back = apply_map(out, stain_map(tq, cv).unsqueeze(0))
    assert torch.allclose(back, x, atol=1e-3)
    gen = torch.Generator().manual_seed(0)
    source = torch.zeros(4, dtype=torch.long)
    batch = x.expand(4, 3, 3, 40)
    assert torch.equal(restain(batch, source, 0.0, gen), batch)
    changed = restain(batch, source, 1.0, gen)
    assert not torch.allclose(changed[:, :, 1], batch[:, :, 1], atol=0.02)  # new nucleus colours
    assert torch.allclose(changed[:, :, 0, 0], batch[:, :, 0, 0], atol=1e-4)
