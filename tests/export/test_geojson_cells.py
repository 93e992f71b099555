"""QuPath cell objects: nucleus outlines, QuPath-style measurement names, µm scale on re-open."""

import numpy as np
import pandas as pd

from hemascope.export import cells_to_geojson
from hemascope.export.geojson import MEASUREMENT_NAMES, measurement_name


def _labelled():
    labels = np.zeros((80, 80), np.uint32)
    nuclei = np.zeros_like(labels)
    labels[10:40, 10:40] = 1
    nuclei[18:32, 18:32] = 1
    labels[50:70, 45:75] = 2  # a cell without a nucleus mask stays a detection
    cells = pd.DataFrame({"id": [1, 2], "row": [24.5, 59.5], "col": [24.5, 59.5], "x_um": [12.25, 29.75],
                          "y_um": [12.25, 29.75], "area_um2": [225.0, 150.0], "nucleus_area_um2": [49.0, 0.0],
                          "confidence": [0.9, 0.8], "prob_blast": [0.9, 0.1], "class": ["blast", "neutrophil"],
                          "bbox_min_row": [10, 50], "bbox_min_col": [10, 45], "bbox_max_row": [40, 70],
                          "bbox_max_col": [40, 75]})
    return cells, labels, nuclei


def test_cells_with_nuclei_become_qupath_cell_objects():
    cells, labels, nuclei = _labelled()
    first, second = cells_to_geojson(cells, labels=labels, nuclei=nuclei, mpp=0.5)["features"]
    assert first["properties"]["objectType"] == "cell"
    ring = np.asarray(first["nucleusGeometry"]["coordinates"][0])
    assert ring[:, 0].min() >= 17.5 and ring[:, 0].max() <= 32.5  # (x, y) of the nucleus box
    assert second["properties"]["objectType"] == "detection" and "nucleusGeometry" not in second
    m = first["properties"]["measurements"]
    assert m["Centroid X µm"] == 12.25 and m["Centroid X px"] == 24.5 and m["Centroid Y px"] == 24.5
    assert m["Cell: Area µm^2"] == 225.0 and m["Nucleus: Area µm^2"] == 49.0
    assert m["Probability: blast"] == 0.9 and m["Classification confidence"] == 0.9
    assert not any(k.startswith("bbox_") for k in m)


def test_measurement_names():
    assert measurement_name("prob_neutrophil") == "Probability: neutrophil"
    assert measurement_name("cytoplasm_mean_g") == "Cytoplasm: Green mean"
    assert measurement_name("something_else") == "something_else"
    assert len(set(MEASUREMENT_NAMES.values())) == len(MEASUREMENT_NAMES)


def test_simplify_ring_keeps_the_shape_and_drops_collinear_vertices():
    from skimage.measure import find_contours

    from hemascope.export.geojson import simplify_ring

    yy, xx = np.mgrid[:80, :80]
    disc = ((yy - 40) ** 2 + (xx - 40) ** 2 <= 30**2).astype(np.uint8)
    contour = find_contours(disc, 0.5)[0]
    ring = simplify_ring(contour, 0.5)

    def area(p):
        return 0.5 * abs(np.dot(p[:-1, 0], p[1:, 1]) - np.dot(p[1:, 0], p[:-1, 1]))

    assert len(ring) < 0.7 * len(contour) and np.array_equal(ring[0], ring[-1])
    assert abs(area(ring) - area(contour)) / area(contour) < 0.02
    square = np.array([[0, 0], [0, 1], [0, 2], [0, 3], [1, 3], [2, 3], [3, 3], [3, 2], [3, 1], [3, 0], [2, 0],
                       [1, 0], [0, 0]], float)
    assert len(simplify_ring(square, 0.1)) < len(square)
