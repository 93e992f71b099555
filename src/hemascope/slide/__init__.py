"""Slide-level predictions: differential count, blast burden and subtype from bags of cells.

Research use only — not for diagnosis.
"""

from hemascope.slide.bag_model import BagModel, load_bag_model
from hemascope.slide.differential import DifferentialCount, differential_count, wilson_interval
from hemascope.slide.subtype import SubtypePrediction, predict_subtype
from hemascope.slide.summary import SlideSummary, summarize

__all__ = [
    "BagModel",
    "DifferentialCount",
    "SlideSummary",
    "SubtypePrediction",
    "differential_count",
    "load_bag_model",
    "predict_subtype",
    "summarize",
    "wilson_interval",
]
