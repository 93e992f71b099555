"""Tunable parameters of the classical segmentation backend (:mod:`hemascope.segment.classical`).

A module of their own so that the backend's parts (``classical``, ``instances``, ``settings``)
import them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hemascope.segment.red_cells import colour_floor


@dataclass(frozen=True)
class ClassicalParams:
    """Tunable parameters of the classical backend (sizes in µm, densities in OD units)."""

    smooth_um: float = 0.3
    nucleus_min_od: float = 0.10
    nucleus_min_area_um2: float = 6.0
    nucleus_hysteresis: float = 0.7
    tint_threshold: float = 0.04
    tint_smooth_um: float = 0.6
    cell_min_od: float = 0.05
    close_um: float = 0.6
    open_um: float = 1.2
    split_depth_um: float = 1.0
    cell_min_area_um2: float = 28.0
    small_cell_um2: float = 36.0
    cell_min_nucleus_um2: float = 14.0
    reference_um: float = 8.0
    reference_min_um2: float = 20.0
    max_rim_um: float = 7.0
    min_off_red_cell_od: float = 0.06
    blue_grey_min_off_red_cell_od: float = 0.04
    nucleus_min_off_od: float = 0.025
    granule_density_factor: float = 1.6
    min_off_red_cell_cytoplasm_od: float = 0.01
    lilac_min_tint: float = 0.05
    red_cell_min_od: float = 0.3
    scale_tolerance: float = 1.25
    red_cell_min_density: float = 0.15
    cytoplasm_min_red_cell_density: float = 0.45
    neighbour_um: float = 12.0

    def for_field(self, scatter: float | None, blue_grey_red_cells: bool) -> ClassicalParams:
        """These parameters on a field (not a close-up): the nucleus floor of density off the red
        cells' colour follows the scatter of that colour (:func:`~hemascope.segment.red_cells.colour_floor`,
        1.5 times ``scatter``, within ``[0.03, 0.06]``), and is at most
        ``blue_grey_min_off_red_cell_od`` among blue-grey red cells, whose hue nuclei lie near."""
        floor = colour_floor(self.min_off_red_cell_od, scatter, 1.5)
        if blue_grey_red_cells:
            floor = min(floor, self.blue_grey_min_off_red_cell_od)
        return self if floor == self.min_off_red_cell_od else replace(self, min_off_red_cell_od=floor)
