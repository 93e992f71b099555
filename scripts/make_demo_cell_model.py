"""Train the SYNTHETIC/DEMO cell model ``wbc-demo`` on cells from hemascope's smear generator.

Usage::

    python scripts/make_demo_cell_model.py --out /tmp/hemascope_wbc_demo [--install]

The demo slide-level models (``aml-subtype-demo``, ``-mean``) read the embeddings of this model:
the real-data ``wbc`` model does not see the synthetic subtype morphology (Auer rods, cup-like
nuclei, hypergranular promyelocytes, hof blasts, abnormal eosinophils), and it calls few synthetic
cells blasts. ``wbc-demo`` is a :class:`~hemascope.models.architectures.CellNet` with the nine
:data:`~hemascope.classes.CELL_CLASSES` (so the differential count of a synthetic slide comes out
right) trained with an auxiliary head (dropped when saving) that names each blast's genetic subtype,
so that its embedding separates the subtype morphologies.

Training cells: crops cut around the true cells of generated blood fields (all five subtypes, the
pipeline's view of a slide) plus single rendered cells of every class, both drawn with the
*seen* stain/scanner range of ``make_synthetic_aml_bags.seen_shift``; robustness to other shifts
comes only from image-space augmentation (HED/colour/hue jitter, cross-crop stain mixing, blur,
noise, JPEG, scale and rotation) — the unseen test settings of the AML bags are never rendered here.
The sample slide's seed (2024) is never used. Synthetic/demo only: not for real smears.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_synthetic_aml_bags import seen_shift, unseen_shift  # noqa: E402

from hemascope.classes import AML_SUBTYPES, CELL_CLASSES  # noqa: E402
from hemascope.classify.calibration import fit_temperature  # noqa: E402
from hemascope.models.architectures import build_model  # noqa: E402
from hemascope.models.card import ModelCard  # noqa: E402
from hemascope.models.registry import BUNDLED_DIR, save_model  # noqa: E402
from hemascope.synthetic import SmearSpec, render_cell, render_field  # noqa: E402
from hemascope.train.augment import AugmentConfig, augment_batch  # noqa: E402
from hemascope.train.metrics import classification_metrics  # noqa: E402

MPP = 0.5
STORE = 64  # stored crop edge (px); the model sees INPUT px cut out of it
INPUT = 48
FINE = [c for c in CELL_CLASSES if c != "blast"] + [f"blast:{s}" for s in AML_SUBTYPES]
MEAN = STD = None  # the card defaults


def fine_label(cls: str, subtype: str) -> int:
    """Index in :data:`FINE`: the class, or the blast's subtype."""
    return FINE.index(f"blast:{subtype}" if cls == "blast" else cls)


def maybe_jpeg(image: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """JPEG round trip at a random quality (55-95) with probability ``p`` (generic augmentation)."""
    if rng.random() >= p:
        return image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(rng.integers(55, 96)))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def field_crops(seed: int, subtype: str, shift_fn, rng: np.random.Generator, jpeg_p: float):
    """Crops around the true white cells and platelets of one generated 1024² blood field."""
    shift = shift_fn(rng)
    image, truth = render_field(
        SmearSpec(
            size=1024,
            mpp=MPP,
            seed=seed,
            kind="blood",
            subtype=subtype,
            wbc_density=300.0,
            shift=shift,
        ),
        masks=False,
    )
    image = maybe_jpeg(image, rng, jpeg_p)
    padded = np.pad(image, ((STORE, STORE), (STORE, STORE), (0, 0)), constant_values=255)
    cells = truth.cells
    keep = cells["class"].isin(CELL_CLASSES).to_numpy().copy()
    # at most 40 platelets per field (they outnumber everything)
    plate = np.flatnonzero(keep & (cells["class"] == "platelet").to_numpy())
    if plate.size > 40:
        keep[rng.choice(plate, plate.size - 40, replace=False)] = False
    sel = cells[keep]
    rows = np.round(sel["row"].to_numpy()).astype(int) + STORE // 2
    cols = np.round(sel["col"].to_numpy()).astype(int) + STORE // 2
    out = [padded[r : r + STORE, c : c + STORE] for r, c in zip(rows, cols, strict=True)]
    labels = [CELL_CLASSES.index(c) for c in sel["class"]]
    fine = [fine_label(c, subtype) for c in sel["class"]]
    return out, labels, fine


def make_split(n_fields: int, per_class: int, seed: int, shift_fn, jpeg_p: float):
    """Crops, classes and fine (subtype) labels of one split."""
    crops, labels, fine = [], [], []
    for k in range(n_fields):
        subtype = AML_SUBTYPES[k % len(AML_SUBTYPES)]
        rng = np.random.default_rng([seed, 1, k])
        a, b, c = field_crops(seed * 100_000 + k, subtype, shift_fn, rng, jpeg_p)
        crops += a
        labels += b
        fine += c
    for i, cls in enumerate(CELL_CLASSES):
        for j in range(per_class):
            rng = np.random.default_rng([seed, 2, i, j])
            subtype = AML_SUBTYPES[j % len(AML_SUBTYPES)]
            image, _, _ = render_cell(
                cls, mpp=MPP, size=STORE, rng=rng, shift=shift_fn(rng), subtype=subtype
            )
            crops.append(maybe_jpeg(image, rng, jpeg_p))
            labels.append(i)
            fine.append(fine_label(cls, subtype))
    return np.stack(crops), np.asarray(labels), np.asarray(fine)


def strong_augment() -> AugmentConfig:
    """Stain/scanner augmentation well beyond the rendered (seen) range."""
    return AugmentConfig(
        rotate=True,
        scale=0.2,
        hed=0.15,
        brightness=0.25,
        contrast=0.25,
        saturation=0.35,
        hue=0.05,
        gray_p=0.05,
        blur_p=0.5,
        blur_sigma=1.6,
        stain_mix_p=0.5,
    )


def evaluate(model, aux, crops, labels, fine, card, batch=512):
    """Logits (9 classes), fine-label accuracy of blasts and the 9-class metrics."""
    model.eval()
    logits, flog = [], []
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            x = augment_batch(
                torch.from_numpy(crops[i : i + batch]),
                INPUT,
                card.mean,
                card.std,
                AugmentConfig.off(),
            )
            z, emb = model.forward_with_embedding(x)
            logits.append(z.numpy())
            flog.append(aux(emb).numpy())
    logits, flog = np.concatenate(logits), np.concatenate(flog)
    blast = labels == CELL_CLASSES.index("blast")
    subtype_acc = (
        float((flog[blast].argmax(1) == fine[blast]).mean()) if blast.any() else float("nan")
    )
    return logits, subtype_acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--fields", type=int, nargs=2, default=(120, 25), metavar=("TRAIN", "VAL"))
    ap.add_argument("--per-class", type=int, nargs=2, default=(300, 50), metavar=("TRAIN", "VAL"))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument(
        "--widths", default="8,16,32,64", help="CellNet widths (the last is the embedding size)"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: no spin-waiting on a shared machine)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--version", default="0.1.0")
    ap.add_argument(
        "--install", action="store_true", help="copy the model into the bundled weights"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    cache = args.out / "crops.npz"
    if cache.exists():
        d = np.load(cache)
        tr, va, sh = (
            (d["xtr"], d["ytr"], d["ftr"]),
            (d["xva"], d["yva"], d["fva"]),
            (d["xsh"], d["ysh"], d["fsh"]),
        )
    else:
        tr = make_split(args.fields[0], args.per_class[0], 10 + args.seed, seen_shift, 0.3)
        va = make_split(args.fields[1], args.per_class[1], 20 + args.seed, seen_shift, 0.0)
        sh = make_split(args.fields[1], args.per_class[1], 30 + args.seed, unseen_shift, 0.0)
        np.savez(
            cache,
            xtr=tr[0],
            ytr=tr[1],
            ftr=tr[2],
            xva=va[0],
            yva=va[1],
            fva=va[2],
            xsh=sh[0],
            ysh=sh[1],
            fsh=sh[2],
        )
    print(
        f"crops: train {len(tr[1])}, val {len(va[1])}, unseen-shift check {len(sh[1])} "
        f"({time.time() - t0:.0f} s)",
        flush=True,
    )

    card = ModelCard(
        name="wbc-demo",
        version=args.version,
        classes=list(CELL_CLASSES),
        input_size=INPUT,
        mpp=MPP,
        architecture="cellnet",
        arch_params={"widths": [int(w) for w in args.widths.split(",")]},
    )
    model = build_model("cellnet", len(CELL_CLASSES), card.arch_params)
    aux = torch.nn.Linear(model.embed_dim, len(FINE))
    params = list(model.parameters()) + list(aux.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    # class-balanced sampling over the fine labels (blast subtypes count as classes)
    counts = np.bincount(tr[2], minlength=len(FINE)).astype(float)
    weights = torch.as_tensor(1.0 / counts[tr[2]])
    steps_per_epoch = len(tr[1]) // args.batch_size
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total)
    gen = torch.Generator().manual_seed(args.seed)
    xtr, ytr, ftr = torch.from_numpy(tr[0]), torch.from_numpy(tr[1]), torch.from_numpy(tr[2])
    cfg = strong_augment()
    best, best_state, history = -1.0, None, []
    for epoch in range(args.epochs):
        model.train()
        aux.train()
        idx = torch.multinomial(weights, steps_per_epoch * args.batch_size, True, generator=gen)
        loss_sum = 0.0
        for s in range(steps_per_epoch):
            b = idx[s * args.batch_size : (s + 1) * args.batch_size]
            x = augment_batch(xtr[b], INPUT, card.mean, card.std, cfg, gen)
            sigma = torch.rand(len(b), 1, 1, 1, generator=gen) * (6.0 / 255 / 0.25)
            x = x + torch.randn(x.shape, generator=gen) * sigma  # sensor noise (normalised units)
            logits, emb = model.forward_with_embedding(x)
            loss = F.cross_entropy(logits, ytr[b], label_smoothing=0.05) + F.cross_entropy(
                aux(emb), ftr[b], label_smoothing=0.05
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach())
        vlog, vsub = evaluate(model, aux, *va, card)
        slog, ssub = evaluate(model, aux, *sh, card)
        vm = classification_metrics(va[1], vlog.argmax(1), list(CELL_CLASSES))
        sm = classification_metrics(sh[1], slog.argmax(1), list(CELL_CLASSES))
        score = vm["macro_f1"] + vsub
        history.append(
            {
                "epoch": epoch + 1,
                "loss": loss_sum / steps_per_epoch,
                "val_macro_f1": vm["macro_f1"],
                "val_blast_subtype_acc": vsub,
                "shift_macro_f1": sm["macro_f1"],
                "shift_blast_subtype_acc": ssub,
            }
        )
        print(json.dumps(history[-1]), f"{time.time() - t0:.0f} s", flush=True)
        if score > best:
            best = score
            best_state = (
                {k: v.clone() for k, v in model.state_dict().items()},
                {k: v.clone() for k, v in aux.state_dict().items()},
            )
    model.load_state_dict(best_state[0])
    aux.load_state_dict(best_state[1])
    vlog, vsub = evaluate(model, aux, *va, card)
    card.temperature = float(fit_temperature(vlog, va[1]))
    slog, ssub = evaluate(model, aux, *sh, card)
    prob = lambda z: torch.softmax(torch.from_numpy(z) / card.temperature, 1).numpy()  # noqa: E731
    vm = classification_metrics(va[1], vlog.argmax(1), list(CELL_CLASSES), prob(vlog))
    sm = classification_metrics(sh[1], slog.argmax(1), list(CELL_CLASSES), prob(slog))
    keep = ("accuracy", "macro_f1", "ece", "n")
    card.metrics = {
        "val": {k: vm[k] for k in keep if k in vm} | {"blast_subtype_accuracy": vsub},
        # held out, never used to pick the epoch: fields/cells of other seeds at the AML bags'
        # unseen test stain/scanner settings
        "test": {k: sm[k] for k in keep if k in sm}
        | {"blast_subtype_accuracy": ssub, "set": "unseen domain shift"},
        "history": history,
    }
    card.training_data = [
        "SYNTHETIC/DEMO: hemascope.synthetic cells only (scripts/make_demo_cell_model.py, "
        f"seed {args.seed}): {len(tr[1])} training crops from {args.fields[0]} generated blood "
        f"fields (all AML subtypes) + {args.per_class[0]} rendered cells per class; "
        "seen stain/scanner range only, strong image-space augmentation",
        "val: fields/cells of other seeds, seen range; test: other seeds at the AML bags' unseen "
        "test stain/scanner settings (never used for selection)",
    ]
    card.licence = "weights: BSD-3-Clause (hemascope); synthetic data"
    card.description = (
        "SYNTHETIC/DEMO white-cell classifier for hemascope's synthetic smears (the demo and the "
        "demo AML subtype bag models); trained on generated cells only — not for real smears; "
        "research use only"
    )
    path = save_model(model, card, args.out)
    print(
        f"wrote {path}: val macro-F1 {vm['macro_f1']:.3f}, blast subtype {vsub:.3f}; "
        f"test (unseen shift) macro-F1 {sm['macro_f1']:.3f}, subtype {ssub:.3f}; T {card.temperature:.3f}"
    )
    if args.install:
        for suffix in (".json", ".safetensors"):
            shutil.copy2(args.out / f"wbc-demo{suffix}", BUNDLED_DIR / f"wbc-demo{suffix}")
        print(f"installed into {BUNDLED_DIR}")


if __name__ == "__main__":
    main()
