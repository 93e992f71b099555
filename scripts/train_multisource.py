"""Train one multi-source ``wbc`` variant on packed crop banks and evaluate it per domain.

Runs where the packed banks are (``scripts/pack_cell_banks.py``), e.g. on a GPU machine::

    python scripts/train_multisource.py --data DATA --out OUT --name final \
        --domains pbc,deepapl,taleqani --loss ce --budget-s 300

Fine-tuning a bundled model (``restain_ft``, on 2 CPU cores; ``wbc`` 0.5.0 averages its weights with
0.4.0's, BENCHMARKS.md "Restained")::

    python scripts/train_multisource.py --data DATA --out OUT --name restain_ft \
        --init src/hemascope/models/weights/wbc.safetensors --lr 1e-3 --warmup 50 --budget-s 2400

It needs only torch/numpy/pandas/pillow/safetensors and the hemascope modules
``train.augment``, ``train.lab_shift``, ``train.restain``, ``train.losses``, ``train.sampling``,
``models.architectures``, ``classify.normalize``, ``classify.adapt`` and ``classify.shift``.
Training: class-first, domain-second balanced sampling over the training domains; the lab
augmentation (:meth:`AugmentConfig.lab`, restaining included: each crop's stain is its source's,
:data:`hemascope.train.restain.DOMAIN_STAIN`); per-crop background white balance (as inference);
AdamW with cosine decay over as many steps as fit ``--budget-s``; the epoch with the best
validation macro-F1 (validation cells of the training domains only) is kept. Evaluation on
every domain's held-out test split (the left-out domain included): macro-F1, per-class F1, blast
recall, mature cells called blast, with and without AdaBN (:mod:`hemascope.classify.adapt`),
and the per-layer shift divergences of held-out batches (:mod:`hemascope.classify.shift`).
Writes ``OUT/NAME.safetensors`` and ``OUT/NAME.json`` (metrics, temperature, config).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from hemascope.classify.adapt import adapt_batchnorm
from hemascope.classify.shift import layer_divergences
from hemascope.classify.stain import STAIN_NAMES
from hemascope.models.architectures import build_model
from hemascope.train.augment import AugmentConfig, augment_batch
from hemascope.train.losses import make_loss
from hemascope.train.restain import DOMAIN_STAIN
from hemascope.train.sampling import balanced_weights

CLASSES = [
    "basophil",
    "eosinophil",
    "erythroblast",
    "ig",
    "lymphocyte",
    "monocyte",
    "neutrophil",
    "platelet",
    "blast",
    "smudge",
]
MATURE = ["lymphocyte", "neutrophil", "monocyte", "eosinophil", "basophil"]
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
INPUT = 48


def _only(**kw) -> AugmentConfig:
    """No augmentation except the named settings."""
    return dataclasses.replace(AugmentConfig.off(), **kw)


STRESS = {
    "blur1.5": _only(blur_p=1.0, blur_sigma=1.5),
    "lowres2.5": _only(lowres_p=1.0),
    "tint0.3": _only(tint=0.3),
    "tight": _only(tight_p=1.0),
    "stain0.2": _only(hed=0.2, saturation=0.3, hue=0.05),
}


def load_bank(data: Path) -> tuple[pd.DataFrame, torch.Tensor]:
    cells = pd.read_csv(data / "cells.csv")
    size = int(cells["size"].iloc[0])
    mosaics = {
        m: np.asarray(Image.open(data / f"mosaic_{m:03d}.jpg").convert("RGB"))
        for m in sorted(cells["mosaic"].unique())
    }
    bank = np.empty((len(cells), size, size, 3), np.uint8)
    for i, (m, slot) in enumerate(zip(cells["mosaic"], cells["slot"], strict=True)):
        r, c = divmod(int(slot), 32)
        bank[i] = mosaics[m][r * size : (r + 1) * size, c * size : (c + 1) * size]
    return cells, torch.from_numpy(bank)


def prepare(bank: torch.Tensor, device: torch.device, wb: bool) -> torch.Tensor:
    """Un-augmented, normalised model inputs (centre crop, white balance as inference)."""
    return augment_batch(bank.to(device), INPUT, MEAN, STD, AugmentConfig.off(), balance_white=wb)


def logits_of(module, bank, device, wb, batch=2048):
    module.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(bank), batch):
            out.append(module(prepare(bank[s : s + batch], device, wb)).float().cpu())
    return torch.cat(out)


def metrics(y: np.ndarray, pred: np.ndarray) -> dict:
    present = sorted(set(y.tolist()))
    per = {}
    for c in present:
        tp = int(((pred == c) & (y == c)).sum())
        fp = int(((pred == c) & (y != c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        p = tp / max(tp + fp, 1)
        r = tp / max(tp + fn, 1)
        per[CLASSES[c]] = {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(2 * p * r / max(p + r, 1e-9), 4),
            "n": int((y == c).sum()),
        }
    blast = CLASSES.index("blast")
    mature = np.isin(y, [CLASSES.index(c) for c in MATURE])
    shared = [c for c in per if c not in ("blast", "smudge")]
    return {
        "n": int(len(y)),
        "accuracy": round(float((pred == y).mean()), 4),
        "macro_f1": round(float(np.mean([v["f1"] for v in per.values()])), 4),
        "macro_f1_no_smudge": round(
            float(np.mean([v["f1"] for k, v in per.items() if k != "smudge"])), 4
        ),
        "macro_f1_shared_normal": round(float(np.mean([per[c]["f1"] for c in shared])), 4)
        if shared
        else None,
        "macro_f1_nlme": round(
            float(
                np.mean(
                    [
                        per[c]["f1"]
                        for c in ("neutrophil", "lymphocyte", "monocyte", "eosinophil")
                        if c in per
                    ]
                )
            ),
            4,
        ),
        "blast_recall": per.get("blast", {}).get("recall"),
        "mature_called_blast": round(float((pred[mature] == blast).mean()), 4)
        if mature.any()
        else None,
        "per_class": per,
    }


def fit_temperature(logits: torch.Tensor, y: np.ndarray) -> float:
    t = torch.zeros(1, requires_grad=True)
    yt = torch.as_tensor(y)
    opt = torch.optim.LBFGS([t], lr=0.1, max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / t.exp(), yt)
        loss.backward()
        return loss

    opt.step(closure)
    return float(t.exp())


def batches_of(x: torch.Tensor, size: int = 512):
    for s in range(0, len(x), size):
        yield x[s : s + size]


def evaluate(module, cells, bank, device, wb, train_domains) -> dict:
    out: dict = {"test": {}, "adabn": {}, "shift": []}
    test = cells["split"] == "test"
    for dom in sorted(cells["domain"].unique()):
        m = (test & (cells["domain"] == dom)).to_numpy()
        y = cells.loc[m, "class"].map(CLASSES.index).to_numpy()
        bk = bank[torch.as_tensor(np.flatnonzero(m))]
        pred = logits_of(module, bk, device, wb).argmax(1).numpy()
        out["test"][dom] = metrics(y, pred)
        x_all = torch.cat([prepare(b, device, wb) for b in batches_of(bk)])
        for prior in (0.0, 64.0, 512.0):
            adapted = adapt_batchnorm(module, batches_of(x_all), prior=prior)
            with torch.no_grad():
                p2 = (
                    torch.cat([adapted(b).float().cpu() for b in batches_of(x_all)])
                    .argmax(1)
                    .numpy()
                )
            out["adabn"][f"{dom}/prior{int(prior)}"] = metrics(y, p2)
        # per-batch (patient / random 200-cell batch) adaptation and shift divergences
        groups = cells.loc[m, "group"].to_numpy()
        if dom == "deepapl":
            keys = [np.flatnonzero(groups == g) for g in sorted(set(groups))]
        else:
            perm = np.random.default_rng(0).permutation(int(m.sum()))
            keys = [
                perm[s : s + 200] for s in range(0, len(perm), 200) if len(perm[s : s + 200]) >= 50
            ]
        preds_b = np.empty_like(pred)
        for idx in keys:
            xb = x_all[torch.as_tensor(idx)]
            div, n = layer_divergences(module, batches_of(xb))
            out["shift"].append(
                {
                    "domain": dom,
                    "in_training": dom in train_domains,
                    "n": n,
                    "split": "test",
                    "divergences": [round(float(d), 5) for d in div],
                }
            )
            adapted = adapt_batchnorm(module, batches_of(xb), prior=64.0)
            with torch.no_grad():
                preds_b[idx] = adapted(xb).float().cpu().argmax(1).numpy()
        out["adabn"][f"{dom}/per_batch_prior64"] = metrics(y, preds_b)
    # stressed copies of every domain's test cells: what other microscopes do to the same cells
    out["stress"] = {}
    for dom in sorted(cells["domain"].unique()):
        m = (test & (cells["domain"] == dom)).to_numpy()
        y = cells.loc[m, "class"].map(CLASSES.index).to_numpy()
        bk = bank[torch.as_tensor(np.flatnonzero(m))]
        for kind, cfg in STRESS.items():
            gen = torch.Generator().manual_seed(2)
            xs = torch.cat(
                [
                    augment_batch(b.to(device), INPUT, MEAN, STD, cfg, gen, balance_white=wb)
                    for b in batches_of(bk)
                ]
            )
            with torch.no_grad():
                pred = (
                    torch.cat([module(b).float().cpu() for b in batches_of(xs)]).argmax(1).numpy()
                )
            out["stress"][f"{dom}/{kind}"] = metrics(y, pred)
    # shifted copies of in-domain test cells (blur, tint) as synthetic "other labs" for the guard
    for dom in train_domains:
        m = (test & (cells["domain"] == dom)).to_numpy()
        bk = bank[torch.as_tensor(np.flatnonzero(m)[:400])]
        for kind, cfg in (
            (
                "tint",
                _only(tint=0.3),
            ),
            (
                "blur",
                _only(blur_p=1.0, blur_sigma=2.0),
            ),
        ):
            gen = torch.Generator().manual_seed(1)
            xs = augment_batch(bk.to(device), INPUT, MEAN, STD, cfg, gen, balance_white=wb)
            div, n = layer_divergences(module, batches_of(xs))
            out["shift"].append(
                {
                    "domain": f"{dom}+{kind}",
                    "in_training": False,
                    "n": n,
                    "split": "test",
                    "divergences": [round(float(d), 5) for d in div],
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--domains", default="pbc,deepapl,taleqani")
    ap.add_argument("--loss", default="ce")
    ap.add_argument("--widths", default="16,32,64,128")
    ap.add_argument("--aug", choices=["lab", "basic"], default="lab")
    ap.add_argument("--no-wb", action="store_true")
    ap.add_argument("--budget-s", type=float, default=300)
    ap.add_argument("--max-steps", type=int, default=40000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", type=Path, help="start from these weights (fine-tuning)")
    ap.add_argument("--warmup", type=int, default=200, help="linear learning-rate warm-up steps")
    ap.add_argument(
        "--class-power", type=float, default=0.5, help="1 = fully class-balanced batches"
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    t_start = time.time()
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True
    device = torch.device(args.device)
    wb = not args.no_wb
    domains = args.domains.split(",")
    cells, bank = load_bank(args.data)
    bank = bank.to(device)
    train_m = ((cells["split"] == "train") & cells["domain"].isin(domains)).to_numpy()
    val_m = ((cells["split"] == "val") & cells["domain"].isin(domains)).to_numpy()
    y_all = torch.as_tensor(cells["class"].map(CLASSES.index).to_numpy().copy())
    tr_idx = np.flatnonzero(train_m)
    va_idx = np.flatnonzero(val_m)
    y_tr = y_all[tr_idx].numpy()
    w = balanced_weights(y_tr, cells["domain"].to_numpy()[tr_idx], class_first=True)
    # class c gets a share of the batches proportional to n_c ** (1 - class_power)
    n_c = np.bincount(y_tr, minlength=len(CLASSES)).astype(float)
    w = w * n_c[y_tr] ** (1 - args.class_power)
    w_t = torch.as_tensor(w / w.sum(), dtype=torch.float32, device=device)
    module = build_model(
        "cellnet", len(CLASSES), {"widths": [int(v) for v in args.widths.split(",")]}
    )
    if args.init is not None:
        from safetensors.torch import load_file

        module.load_state_dict(load_file(str(args.init)))
    module = module.to(device)
    counts = np.bincount(y_tr, minlength=len(CLASSES))
    loss_fn = make_loss(args.loss, counts, epochs=10).to(device)
    opt = torch.optim.AdamW(module.parameters(), lr=args.lr, weight_decay=5e-4)
    cfg = AugmentConfig.lab() if args.aug == "lab" else AugmentConfig(stain_mix_p=0.5, blur_p=0.5)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    bank_tr = bank[torch.as_tensor(tr_idx, device=device)]
    y_tr_t = torch.as_tensor(y_tr, device=device)
    stain_of = cells["domain"].map(lambda d: STAIN_NAMES.index(DOMAIN_STAIN[d])).to_numpy()
    stain_tr = torch.as_tensor(stain_of[tr_idx], device=device)
    va_bank = bank[torch.as_tensor(va_idx, device=device)]
    y_va = y_all[va_idx].numpy()
    history, best, best_state = [], -1.0, None
    step, total, t0 = 0, args.max_steps, time.time()
    eval_every = 500
    while step < total:
        if step == 50:
            t50 = time.time()
        if step == 150:  # size the run to the time budget
            per_step = (time.time() - t50) / 100
            total = int(
                min(
                    args.max_steps,
                    max(1000, (args.budget_s - (time.time() - t_start)) / (per_step * 1.08)),
                )
            )
            eval_every = max(200, total // 25)
        warm = args.warmup
        lr = (
            args.lr * (step + 1) / warm
            if step < warm
            else args.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        module.train()
        idx = torch.multinomial(w_t, args.batch, replacement=True, generator=gen).to(device)
        x = augment_batch(
            bank_tr[idx], INPUT, MEAN, STD, cfg, gen, balance_white=wb, stain=stain_tr[idx]
        )
        loss = loss_fn(module(x), y_tr_t[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % eval_every == 0 or step == total:
            pred = logits_of(module, va_bank, device, wb).argmax(1).numpy()
            f1 = metrics(y_va, pred)["macro_f1"]
            history.append(
                {
                    "step": step,
                    "loss": round(float(loss.detach()), 4),
                    "val_macro_f1": f1,
                    "s": round(time.time() - t0, 1),
                }
            )
            print(args.name, history[-1], flush=True)
            if f1 > best:
                best = f1
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    module.load_state_dict(best_state)
    module.eval()
    temperature = fit_temperature(logits_of(module, va_bank, device, wb), y_va)
    result = {
        "name": args.name,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "classes": CLASSES,
        "steps": total,
        "best_val_macro_f1": best,
        "temperature": temperature,
        "history": history,
        "train_counts": {
            f"{d}/{c}": int(n)
            for (d, c), n in cells[train_m].groupby(["domain", "class"]).size().items()
        },
    }
    result |= evaluate(module, cells, bank, device, wb, domains)
    result["seconds"] = round(time.time() - t_start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous().cpu() for k, v in module.state_dict().items()},
        str(args.out / f"{args.name}.safetensors"),
    )
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    print(
        args.name,
        "done",
        json.dumps(
            {
                d: (v["macro_f1"], v["blast_recall"], v["mature_called_blast"])
                for d, v in result["test"].items()
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
