"""Cell classification: crop extraction at the model's scale, batched inference, calibration."""

from hemascope.classify.adapt import adapt_batchnorm
from hemascope.classify.calibration import calibrated_probabilities, fit_temperature
from hemascope.classify.crops import cell_image_to_crop, crops_to_tensor, slide_crop
from hemascope.classify.engine import (
    CellPredictions,
    ImagePredictions,
    classify_images,
    predict_cells,
    resolve_device,
    run_model,
)
from hemascope.classify.images import expand_image_paths, read_cell_image
from hemascope.classify.shift import DomainShift, domain_shift

__all__ = [
    "CellPredictions",
    "DomainShift",
    "adapt_batchnorm",
    "domain_shift",
    "ImagePredictions",
    "calibrated_probabilities",
    "cell_image_to_crop",
    "classify_images",
    "crops_to_tensor",
    "expand_image_paths",
    "fit_temperature",
    "predict_cells",
    "read_cell_image",
    "resolve_device",
    "run_model",
    "slide_crop",
]
