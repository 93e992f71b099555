"""Bag classifiers over cell embeddings: moved to :mod:`hemascope.models.mil` (the models room).

This name stays so that scripts and trainers written against it keep working.
"""

from hemascope.models.mil import (
    BAG_ARCHITECTURES,
    CARD_ARCHITECTURES,
    BagEnsemble,
    GatedAttentionMIL,
    GroupedMeanBagClassifier,
    InstanceBagClassifier,
    MeanPoolBagClassifier,
    build_bag_model,
)

__all__ = [
    "BAG_ARCHITECTURES",
    "CARD_ARCHITECTURES",
    "BagEnsemble",
    "GatedAttentionMIL",
    "GroupedMeanBagClassifier",
    "InstanceBagClassifier",
    "MeanPoolBagClassifier",
    "build_bag_model",
]
