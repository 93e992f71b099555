"""Deterministic synthetic Romanowsky-stained blood and bone-marrow smears with ground truth.

>>> from hemascope.synthetic import SmearSpec, render_field
>>> image, truth = render_field(SmearSpec(size=512, seed=1))  # doctest: +SKIP

* :class:`SmearSpec`, :class:`DomainShift` — what to generate (size, µm/px, seed, kind, genetic
  subtype, class mix, densities, stain and scanner variation).
* :func:`render_field` — a field in memory with its :class:`GroundTruth` (cell table, instance masks).
* :func:`make_smear` — a pyramidal OME-TIFF written tile by tile (up to 100k x 100k) plus
  ``<stem>.cells.csv`` / ``<stem>.truth.json`` (and ``<stem>.masks.tif`` on request).
* :func:`render_cell` — one centred cell crop with its masks (classifier tests and demo models).
* :func:`sample_slide_path` — the embedded sample slide (regenerated into the cache if needed).
* :func:`photographed` — a field as photographed through a microscope (vignetting, field stop).
"""

from hemascope.synthetic.field import render_cell, render_field
from hemascope.synthetic.optics import photographed
from hemascope.synthetic.sample import SAMPLE_SPEC, sample_slide_path
from hemascope.synthetic.smear_file import SmearTileSource, make_smear
from hemascope.synthetic.spec import (
    DOMAIN_SHIFT_SETTINGS,
    SMEAR_KINDS,
    WBC_CLASSES,
    DomainShift,
    SmearSpec,
)
from hemascope.synthetic.truth import TRUTH_COLUMNS, GroundTruth, read_masks, truth_paths

__all__ = [
    "DOMAIN_SHIFT_SETTINGS",
    "DomainShift",
    "GroundTruth",
    "SAMPLE_SPEC",
    "SMEAR_KINDS",
    "SmearSpec",
    "SmearTileSource",
    "TRUTH_COLUMNS",
    "WBC_CLASSES",
    "make_smear",
    "photographed",
    "read_masks",
    "render_cell",
    "render_field",
    "sample_slide_path",
    "truth_paths",
]
