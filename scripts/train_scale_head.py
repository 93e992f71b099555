"""Train the scale head of the bundled ``wbc`` cell model (``wbc-scale.safetensors``).

The head reads the frozen ``wbc`` network's features and logits of a crop made at a wrong µm/px
and predicts how wrong: ``log(claimed / true µm/px)`` (:mod:`hemascope.classify.cell_scale`).
Training views: cells of the PBC and DeepAPL **training** splits of ``scripts/prepare_cell_data.py``
(``WORK/{pbc,deepapl}_train.csv``; validation and test cells, and every other source, never seen),
each cut at ``VIEWS`` claimed scales log-uniform in 0.5-2x its true one — half of the views plain,
half with the lab augmentation of the ``wbc`` recipe (:meth:`AugmentConfig.lab`: stain, light,
blur, low resolution, noise, tight framing) and 30 % of them cut to a 14-30 µm close-up first.
Sources weigh equally. Three MLPs (features + logits, standardised → 128 → 128 ReLU → 1; seeds
``SEED``, ``SEED + 1``, ``SEED + 2``) are fitted with an L1 loss, AdamW and cosine decay, and
their answers averaged; its weights, the standardisation and the backbone's sha256 are
written to ``OUT`` (safetensors; the card is in the file's metadata). Runs on 2 CPU cores in
≈ 8 minutes::

    python scripts/train_scale_head.py --work /tmp/hemascope_cells \
        --out src/hemascope/models/weights/wbc-scale.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from hemascope.classify.cell_scale import (
    HEAD_DEPTH,
    HEAD_HIDDEN,
    HEAD_MEMBERS,
    MeanOf,
    head_network,
)
from hemascope.classify.crops import cell_image_to_crop, crops_to_tensor
from hemascope.classify.images import read_cell_image
from hemascope.errors import HemascopeError
from hemascope.models.registry import load_model
from hemascope.train.augment import AugmentConfig, color

SOURCES = ("pbc", "deepapl")
VIEWS = 8
#: Claimed / true µm/px of the training views (log-uniform).
FACTORS = (0.5, 2.0)
CLOSE_UP_P = 0.3
CLOSE_UP_UM = (14.0, 30.0)


def _views(loaded, table: pd.DataFrame, augment: bool, seed: int, close_up_p: float = CLOSE_UP_P,
           blur_sigma: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features+logits and targets of ``VIEWS`` wrongly scaled crops of every cell of ``table``."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    card, cfg = loaded.card, AugmentConfig.lab()
    if blur_sigma is not None:
        cfg.blur_sigma = blur_sigma
    features, targets = [], []
    for path, mpp in zip(table.path, table.mpp, strict=True):
        image = read_cell_image(path)
        crops, logs = [], []
        for _ in range(VIEWS):
            factor = float(np.exp(rng.uniform(*np.log(FACTORS))))
            picture = image
            if augment and rng.random() < close_up_p:
                side = int(round(rng.uniform(*CLOSE_UP_UM) / mpp))
                r0, c0 = max((image.shape[0] - side) // 2, 0), max((image.shape[1] - side) // 2, 0)
                picture = image[r0 : r0 + side, c0 : c0 + side]
            try:
                crops.append(cell_image_to_crop(picture, mpp * factor, card))
            except HemascopeError:
                continue  # too small a picture at that claim
            logs.append(np.log(factor))
        if not crops:
            continue
        batch = np.stack(crops)
        if augment:
            x = color(torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255, cfg, gen)
            batch = (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        with torch.inference_mode():
            logits, emb = loaded.module.forward_with_embedding(crops_to_tensor(batch, card))
        features.append(torch.cat([emb, logits], dim=1).numpy())
        targets += logs
    return np.concatenate(features), np.asarray(targets, dtype=np.float32)


def _fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, epochs: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = head_network(x.shape[1], members=1)
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    xt, yt, wt = (torch.tensor(a, dtype=torch.float32) for a in (x, y, w))
    for _ in range(epochs):
        for b in torch.randperm(len(xt)).split(512):
            loss = (wt[b] * (net(xt[b]).squeeze(1) - yt[b]).abs()).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder of prepare_cell_data.py's split CSVs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-source", type=int, default=0, help="cells per source (0: all)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--splits", default="train", help="splits of each source to train on, e.g. train,val")
    parser.add_argument("--close-up-p", type=float, default=CLOSE_UP_P)
    parser.add_argument("--blur-sigma", type=float, default=None, help="px at 0.5 µm/px (default: the lab recipe's)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    loaded = load_model("wbc", "cpu")
    xs, ys, ws = [], [], []
    for k, source in enumerate(SOURCES):
        table = pd.concat([pd.read_csv(args.work / f"{source}_{split}.csv") for split in args.splits.split(",")])
        if args.per_source:
            table = table.sample(min(args.per_source, len(table)), random_state=args.seed)
        for augment in (False, True):
            x, y = _views(loaded, table, augment, args.seed + 2 * k + augment, args.close_up_p, args.blur_sigma)
            xs.append(x)
            ys.append(y)
            ws.append(np.full(len(y), 1.0 / len(y)))
            print(f"{source} {'augmented' if augment else 'plain'}: {len(y)} views", flush=True)
    x, y, w = np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)
    mean, std = x.mean(0), x.std(0) + 1e-6
    z, w = (x - mean) / std, w / w.mean()
    net = MeanOf([_fit(z, y, w, args.epochs, args.seed + k) for k in range(HEAD_MEMBERS)])
    tensors = {f"net.{k}": v.contiguous() for k, v in net.state_dict().items()}
    tensors["mean"] = torch.tensor(mean, dtype=torch.float32)
    tensors["std"] = torch.tensor(std, dtype=torch.float32)
    metadata = {
        "backbone": loaded.card.name,
        "backbone_version": loaded.card.version,
        "backbone_sha256": loaded.card.sha256,
        "hidden": str(HEAD_HIDDEN),
        "depth": str(HEAD_DEPTH),
        "members": str(HEAD_MEMBERS),
        "target": "log(claimed / true um/px) of a crop made at the claimed um/px",
        "training_data": json.dumps({s: f"{s} {args.splits} split(s) of prepare_cell_data.py" for s in SOURCES}),
        "recipe": f"{VIEWS} views per cell at {FACTORS[0]}-{FACTORS[1]}x, half with AugmentConfig.lab "
                  f"(blur sigma {args.blur_sigma or AugmentConfig.lab().blur_sigma:g} px) "
                  f"and {args.close_up_p:.0%} of those cut to {CLOSE_UP_UM[0]:g}-{CLOSE_UP_UM[1]:g} um close-ups; "
                  f"L1, AdamW 1e-3, {args.epochs} epochs; {HEAD_MEMBERS} networks of seeds {args.seed}.., averaged",
        "licence": "BSD-3-Clause (hemascope); trained on PBC (CC BY 4.0) and DeepAPL (research use) cells",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out), metadata=metadata)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
