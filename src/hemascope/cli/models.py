"""``hemascope models``: list the available cell and bag models with their cards."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hemascope.models import ModelCard

COMMAND = ("models",)
HELP = "list the available models (cell and bag models) and their model cards"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``hemascope models``."""
    parser.add_argument(
        "name", nargs="?", help="show the full card of one model (name, path or URL)"
    )
    parser.add_argument("--json", action="store_true", help="print cards as JSON")
    parser.add_argument(
        "--kind", choices=("cell", "bag"), default=None,
        help="only models of this kind: cell classifiers or bag (slide-level) models",
    )


def _headline_metric(metrics: dict) -> str:
    """The card's headline figure: held-out test macro-F1 (per source where the card gives one
    per source), else cross-validated AUC/accuracy."""
    test = metrics.get("test") or {}
    if "macro_f1" in test:
        return f"test macro-F1 {test['macro_f1']:.3f}"
    per_source = {source: scores["macro_f1"] for source, scores in test.items()
                  if isinstance(scores, dict) and scores.get("macro_f1") is not None}
    if per_source:
        return "test macro-F1 " + ", ".join(f"{source} {value:.3f}"
                                            for source, value in per_source.items())
    cv = (metrics.get("cross_validation") or {}).get("metrics") or {}
    auc, acc = (cv.get(k, {}).get("mean") for k in ("auc", "accuracy"))
    if auc is not None and acc is not None:
        return f"cross-validated AUC {auc:.2f}, accuracy {acc:.2f}"
    return "no held-out metrics"


def _describe(card: ModelCard, slide_models: dict[str, list[str]]) -> list[str]:
    """The lines ``hemascope models`` prints for one card."""
    if card.kind == "bag":
        what = f"bag model over {card.embedding_model or 'cell'} embeddings"
    else:
        what = f"{card.input_size} px @ {card.mpp:g} µm/px"
    lines = [f"{card.name} {card.version}  {what}  sha256 {card.sha256[:12]}  "
             f"{_headline_metric(card.metrics)}",
             f"    classes: {', '.join(card.classes)}"]
    if card.kind == "cell":
        fits = slide_models.get(card.name, [])
        lines.append(f"    slide models on its cells: {', '.join(fits) if fits else 'none'}")
    if card.description:
        lines.append(f"    {card.description}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the model list (by kind) or one card."""
    import json

    from hemascope.models import MODEL_KINDS, cache_dir, list_models, load_model

    if args.name:
        card = load_model(args.name, kind=args.kind).card
        print(card.to_json())
        return 0
    kinds = [args.kind] if args.kind else list(MODEL_KINDS)
    cards = [card for kind in kinds for card in list_models(kind=kind)]
    if args.json:
        print(json.dumps([c.to_dict() for c in cards], indent=2))
        return 0
    if not cards:
        print(f"no models found (bundled or in {cache_dir()})")
        return 0
    from hemascope.slide.applicability import models_by_cell_model

    slide_models = models_by_cell_model()
    for card in cards:
        print("\n".join(_describe(card, slide_models)))
    return 0
