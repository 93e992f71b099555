"""``hemascope models``: list the available cell and bag models with their cards."""

from __future__ import annotations

import argparse

COMMAND = ("models",)
HELP = "list the available models (cell and bag models) and their model cards"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``hemascope models``."""
    parser.add_argument(
        "name", nargs="?", help="show the full card of one model (name, path or URL)"
    )
    parser.add_argument("--json", action="store_true", help="print cards as JSON")


def _headline_metric(metrics: dict) -> str:
    """The card's headline figure: held-out test macro-F1, else cross-validated AUC/accuracy."""
    test = metrics.get("test") or {}
    if "macro_f1" in test:
        return f"test macro-F1 {test['macro_f1']:.3f}"
    cv = (metrics.get("cross_validation") or {}).get("metrics") or {}
    auc, acc = (cv.get(k, {}).get("mean") for k in ("auc", "accuracy"))
    if auc is not None and acc is not None:
        return f"cross-validated AUC {auc:.2f}, accuracy {acc:.2f}"
    return "no held-out metrics"


def run(args: argparse.Namespace) -> int:
    """Print the model list or one card."""
    import json

    from hemascope.models import cache_dir, list_models, load_model

    if args.name:
        card = load_model(args.name).card
        print(card.to_json())
        return 0
    cards = list_models()
    if args.json:
        print(json.dumps([c.to_dict() for c in cards], indent=2))
        return 0
    if not cards:
        print(f"no models found (bundled or in {cache_dir()})")
        return 0
    from hemascope.slide.applicability import models_by_cell_model

    slide_models = models_by_cell_model()
    for c in cards:
        figure = _headline_metric(c.metrics)
        if c.kind == "bag":
            what = f"bag model over {c.embedding_model or 'cell'} embeddings"
        else:
            what = f"{c.input_size} px @ {c.mpp:g} µm/px"
        print(f"{c.name} {c.version}  {what}  sha256 {c.sha256[:12]}  {figure}")
        print(f"    classes: {', '.join(c.classes)}")
        if c.kind != "bag":
            fits = slide_models.get(c.name, [])
            print(f"    slide models on its cells: {', '.join(fits) if fits else 'none'}")
        if c.description:
            print(f"    {c.description}")
    return 0
