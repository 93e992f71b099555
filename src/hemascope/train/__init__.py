"""Training and evaluation of cell classifiers: data sets, augmentation, losses, loops, metrics."""

from hemascope.train.augment import AugmentConfig, augment_batch, gaussian_blur, hed_shift
from hemascope.train.datasets import load_crop_bank, read_cell_table, split_table
from hemascope.train.losses import LOSSES, make_loss
from hemascope.train.metrics import (
    classification_metrics,
    expected_calibration_error,
    save_confusion_png,
)
from hemascope.train.noise import inject_symmetric_noise
from hemascope.train.sampling import balanced_sampler, balanced_weights
from hemascope.train.trainer import TrainConfig, TrainResult, train_cells

__all__ = [
    "LOSSES",
    "AugmentConfig",
    "TrainConfig",
    "TrainResult",
    "augment_batch",
    "balanced_sampler",
    "balanced_weights",
    "classification_metrics",
    "expected_calibration_error",
    "gaussian_blur",
    "hed_shift",
    "inject_symmetric_noise",
    "load_crop_bank",
    "make_loss",
    "read_cell_table",
    "save_confusion_png",
    "split_table",
    "train_cells",
]
