"""White cells found by their colour relative to the image's own red cells, whatever the stain."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk

from hemascope.segment import find_cells

GLASS = np.array([252.0, 254.0, 250.0])
#: OD of grey-blue red cells (absorbing red most), as in some labs' B-ALL smears.
GREY_BLUE_RED_CELL = np.array([0.17, 0.13, 0.07])


def _field(cells: list[tuple[float, float, float]], nucleus: np.ndarray, seed: int = 0,
           red_cell: np.ndarray = GREY_BLUE_RED_CELL) -> np.ndarray:
    """A 0.5 µm/px field of red cells (radius 7.5 px) with white cells ``(row, col, radius px)``."""
    rng = np.random.default_rng(seed)
    od = np.zeros((320, 320, 3))
    centres = [(r, c) for r, c, _ in cells]
    placed = 0
    while placed < 110:
        r, c = rng.uniform(0, 320, 2)
        if min(np.hypot(r - a, c - b) for a, b in centres) < 20:
            continue
        rr, cc = disk((r, c), 7.5, shape=od.shape[:2])
        od[rr, cc] = red_cell
        placed += 1
    for r, c, radius in cells:
        rr, cc = disk((r, c), radius, shape=od.shape[:2])
        od[rr, cc] = 0.35 * nucleus  # thin cytoplasm rim of the same dye
        rr, cc = disk((r, c), radius - 2, shape=od.shape[:2])
        od[rr, cc] = nucleus
    noise = rng.normal(0, 1.0, od.shape)
    return np.clip(GLASS * 10.0 ** -od + noise, 0, 255).astype(np.uint8)


def test_magenta_nuclei_that_absorb_little_red_light_are_found():
    """Magenta blasts (nuclear OD mostly in green, red OD below the red cells') among grey-blue red cells."""
    magenta = np.array([0.085, 0.17, 0.015])  # paler in red than the red cells themselves
    truth = [(70.0, 80.0, 11.0), (160.0, 230.0, 12.0), (250.0, 100.0, 10.0)]
    seg = find_cells(_field(truth, magenta), mpp=0.5)
    found = seg.cells[["row", "col"]].to_numpy()
    assert len(found) == 3, found
    for r, c, _ in truth:
        assert np.hypot(found[:, 0] - r, found[:, 1] - c).min() < 4
    assert (seg.cells["nucleus_area_um2"] > 0.5 * np.pi * (8 * 0.5) ** 2).all()


def test_touching_blasts_of_a_packed_field_are_counted_one_by_one():
    """Three round blasts touching in a row are three cells, not one merged object."""
    purple = np.array([0.45, 0.55, 0.15])
    truth = [(160.0, 120.0, 11.0), (160.0, 141.0, 11.0), (160.0, 162.0, 11.0)]
    seg = find_cells(_field(truth, purple, seed=1), mpp=0.5)
    found = seg.cells[["row", "col"]].to_numpy()
    assert len(found) == 3, found
    for r, c, _ in truth:
        assert np.hypot(found[:, 0] - r, found[:, 1] - c).min() < 5


def test_a_cell_mask_cut_through_its_one_nucleus_is_joined_again():
    """A whole-cell mask that leaked into a neighbour is cut by the watershed; one nucleus = one cell."""
    from hemascope.segment.classical import split_cells

    cells = np.zeros((120, 160), dtype=bool)
    for centre in ((60, 52), (60, 108)):  # two round lobes of mask: two distance maxima
        rr, cc = disk(centre, 30, shape=cells.shape)
        cells[rr, cc] = True
    nuclei = np.zeros_like(cells)
    rr, cc = disk((60, 80), 10, shape=cells.shape)  # one round nucleus across the neck
    nuclei[rr, cc] = True
    labels = split_cells(cells, nuclei, mpp=0.25)
    assert labels.max() == 1
    # two touching round nuclei (two maxima of their own) keep their cells apart
    nuclei[:] = False
    for centre in ((60, 71), (60, 89)):
        rr, cc = disk(centre, 9, shape=cells.shape)
        nuclei[rr, cc] = True
    assert split_cells(cells, nuclei, mpp=0.25).max() == 2


def test_eosinophil_granules_coloured_like_red_cells_belong_to_the_cell():
    """Close-up: dense orange granules (exactly the red cells' colour, 2.4x denser) are cell pixels."""
    from hemascope.segment.classical import cell_mask

    red_cell = np.array([0.10, 0.30, 0.22])
    od = np.zeros((300, 300, 3), dtype=np.float32)
    for r, c in ((40, 40), (40, 260), (260, 40), (260, 260), (150, 30), (30, 150), (270, 150), (150, 275)):
        rr, cc = disk((r, c), 36, shape=od.shape[:2])
        od[rr, cc] = red_cell
    granules = np.zeros(od.shape[:2], dtype=bool)
    rr, cc = disk((150, 150), 62, shape=od.shape[:2])
    granules[rr, cc] = True
    od[granules] = 2.4 * red_cell
    nuclei = np.zeros_like(granules)
    for centre in ((125, 150), (178, 150)):  # bilobed nucleus
        rr, cc = disk(centre, 24, shape=od.shape[:2])
        nuclei[rr, cc] = True
    od[nuclei] = (0.55, 0.80, 0.25)
    mask = cell_mask(od, nuclei, mpp=0.1)
    assert (mask & granules).sum() > 0.9 * granules.sum()
    assert (mask & ~granules).sum() < 0.05 * granules.sum()


def test_a_close_up_judges_colour_against_its_own_red_cells():
    """A 30 µm close-up whose nucleus has the red cells' (OD_r - OD_b) tint but another colour is found."""
    pink_red_cell = np.array([0.18, 0.42, 0.18])
    crimson_nucleus = np.array([0.55, 0.80, 0.55])  # same red-minus-blue tint (0): the tint axis is blind
    od = np.zeros((300, 300, 3))
    for r, c in ((45, 45), (45, 255), (255, 45), (255, 255), (150, 28), (28, 150), (272, 150), (150, 272)):
        rr, cc = disk((r, c), 38, shape=od.shape[:2])
        od[rr, cc] = pink_red_cell
    rr, cc = disk((150, 150), 60, shape=od.shape[:2])
    od[rr, cc] = 0.35 * crimson_nucleus  # cytoplasm
    rr, cc = disk((150, 150), 40, shape=od.shape[:2])
    od[rr, cc] = crimson_nucleus
    noise = np.random.default_rng(3).normal(0, 1.0, od.shape)
    image = np.clip(np.array([255.0, 235.0, 210.0]) * 10.0 ** -od + noise, 0, 255).astype(np.uint8)
    seg = find_cells(image, mpp=0.1)
    assert len(seg.cells) == 1
    cell = seg.cells.iloc[0]
    assert np.hypot(cell["row"] - 150, cell["col"] - 150) < 10
    assert abs(cell["nucleus_area_um2"] - np.pi * 4.0**2) < 0.25 * np.pi * 4.0**2


@pytest.mark.parametrize("nucleus, cytoplasm", [
    # a real lymphocyte's colours (CellaVision, bare glass)
    (np.array([0.49, 0.84, 0.21]), np.array([0.08, 0.10, 0.03])),
    # magenta (Wright, Leishman; as measured on wbc_seg cells recoloured so): little red light absorbed, no lilac tint
    (np.array([0.21, 0.54, 0.22]), np.array([0.10, 0.17, 0.07])),
], ids=["lilac", "magenta"])
def test_white_cells_on_bare_glass_of_a_field_are_found(nucleus, cytoplasm):
    """A 100 µm field with two lymphocytes and a neutrophil-sized cell on glass and no red cells (a
    red-cell-poor area, a cytospin): the stain references were measured on the white cells
    themselves — their cytoplasm became the "red-cell" colour — and no cell was found. Magenta
    nuclei pass no lilac test: on such a field the densest stain is taken where it is distinct
    from the stain's main colour and far denser than the rest (a nucleus, not red cells)."""
    od = np.zeros((1000, 1000, 3))
    cells = ((300, 300, 45, 60), (650, 420, 45, 62), (500, 750, 50, 80))  # row, col, nucleus, cell px
    for r, c, radius, whole in cells:
        od[disk((r, c), whole, shape=od.shape[:2])] = cytoplasm
        od[disk((r, c), radius, shape=od.shape[:2])] = nucleus
    noise = np.random.default_rng(4).normal(0, 1.0, od.shape)
    image = np.clip(np.array([255.0, 229.0, 202.0]) * 10.0 ** -od + noise, 0, 255).astype(np.uint8)
    seg = find_cells(image, mpp=0.1)
    assert len(seg.cells) == 3
    for r, c, _, whole in cells:
        found = seg.cells.loc[np.hypot(seg.cells["row"] - r, seg.cells["col"] - c).idxmin()]
        assert np.hypot(found["row"] - r, found["col"] - c) < 10
        assert abs(found["area_um2"] - np.pi * (whole * 0.1) ** 2) < 0.3 * np.pi * (whole * 0.1) ** 2


@pytest.mark.parametrize("density", [1.0, 1.6])
def test_a_field_of_red_cells_only_holds_no_white_cell(density):
    """A 100 µm field of red cells (some with central pallor) and no white cell, as most fields of
    a 100x camera are: with no nucleus, no red-cell colour is measured (the stain far from every
    nucleus), and the densest stain of such a field is its red cells. Taking it for nuclei, as on
    a close-up, found every red cell a white cell (20-64 per field on another lab's pictures with
    their white cell painted out)."""
    rng = np.random.default_rng(8)
    od = np.zeros((1000, 1000, 3))
    for r in range(45, 1000, 95):
        for c in range(45, 1000, 95):
            r2, c2 = r + rng.integers(-8, 9), c + rng.integers(-8, 9)
            od[disk((r2, c2), 37, shape=od.shape[:2])] = density * PINK_RED_CELL
            if rng.random() < 0.5:
                od[disk((r2, c2), 14, shape=od.shape[:2])] = 0.5 * density * PINK_RED_CELL
    noise = rng.normal(0, 1.0, od.shape)
    image = np.clip(WARM_GLASS * 10.0 ** -od + noise, 0, 255).astype(np.uint8)
    assert len(find_cells(image, mpp=0.1).cells) == 0


@pytest.mark.parametrize("density", [0.5, 0.8])
def test_a_field_of_purple_rimmed_red_cells_only_holds_no_white_cell(density):
    """Red cells whose rims are darker and more lilac than their bodies (the optics of many
    cameras), and no white cell: with no nucleus, no red-cell colour is measured, and the rims
    passed the lilac tests — 36-44 false white cells on such a field (2 where the denser rims
    bridge into one blob). A blob of a field without red-cell colour must be far denser than the
    red cells around it to be a nucleus."""
    rng = np.random.default_rng(8)
    body = np.array([0.44, 0.78, 0.45]) / 1.67
    rim = np.array([0.6, 0.8, 0.25]) / 1.65
    od = np.zeros((1000, 1000, 3))
    for r in range(45, 1000, 80):
        for c in range(45, 1000, 80):
            r2, c2 = r + rng.integers(-6, 7), c + rng.integers(-6, 7)
            od[disk((r2, c2), 37, shape=od.shape[:2])] = 1.5 * density * rim
            od[disk((r2, c2), 31, shape=od.shape[:2])] = density * body
    noise = rng.normal(0, 1.0, od.shape)
    image = np.clip(WARM_GLASS * 10.0 ** -od + noise, 0, 255).astype(np.uint8)
    assert len(find_cells(image, mpp=0.1).cells) == 0


#: Blue-grey red cells as dense as a pale violet nucleus, and the nucleus's faint cytoplasm (OD as
#: measured on wbc_seg cells restained like the Taleqani fields): the tint (OD_r - OD_b) of the red
#: cells is as high as the nucleus's, and only the direction of their colour tells them apart.
DENSE_BLUE_GREY_RED_CELL = np.array([0.20, 0.15, 0.045])
PALE_VIOLET_NUCLEUS = np.array([0.16, 0.19, 0.0])
FAINT_CYTOPLASM = np.array([0.10, 0.08, 0.0])


def test_a_close_up_among_blue_grey_red_cells_as_dense_as_its_nucleus_is_found():
    """A 30 µm close-up: no density threshold leaves red cells far from the "dense" stain, and the
    tint tests take every red cell for a white cell; the cell was missed or merged with them."""
    od = np.zeros((300, 300, 3))
    for r, c in ((40, 40), (40, 260), (260, 40), (260, 260), (150, 25), (25, 150), (275, 150), (150, 275)):
        rr, cc = disk((r, c), 36, shape=od.shape[:2])
        od[rr, cc] = DENSE_BLUE_GREY_RED_CELL
    rr, cc = disk((150, 150), 62, shape=od.shape[:2])
    od[rr, cc] = FAINT_CYTOPLASM
    rr, cc = disk((150, 150), 45, shape=od.shape[:2])
    od[rr, cc] = PALE_VIOLET_NUCLEUS
    noise = np.random.default_rng(5).normal(0, 1.0, od.shape)
    image = np.clip(GLASS * 10.0 ** -od + noise, 0, 255).astype(np.uint8)
    seg = find_cells(image, mpp=0.1)
    assert len(seg.cells) == 1, seg.cells
    cell = seg.cells.iloc[0]
    assert np.hypot(cell["row"] - 150, cell["col"] - 150) < 10
    assert abs(cell["nucleus_area_um2"] - np.pi * 4.5**2) < 0.25 * np.pi * 4.5**2


#: CellaVision colours (OD directions measured on wbc_seg cells): a lilac nucleus and cytoplasm,
#: pink red cells.
LILAC_NUCLEUS = np.array([0.49, 0.84, 0.21])
LILAC_CYTOPLASM = np.array([0.61, 0.77, 0.18])
PINK_RED_CELL = 0.35 * np.array([0.44, 0.78, 0.45])


def _lilac_cells_among_pink_red_cells(shape: tuple[int, int], red_cells: list[tuple[int, int]],
                                      cells: list[tuple[int, int]], radii: tuple[int, int],
                                      cytoplasm_od: float, seed: int) -> np.ndarray:
    """A 0.1 µm/px picture: pink red cells (radius 37 px) and white cells of ``radii`` (cell,
    nucleus px) with cytoplasm ``cytoplasm_od`` times :data:`LILAC_CYTOPLASM`, on warm glass."""
    od = np.zeros((*shape, 3))
    for r, c in red_cells:
        od[disk((r, c), 37, shape=shape)] = PINK_RED_CELL
    for r, c in cells:
        od[disk((r, c), radii[0], shape=shape)] = cytoplasm_od * LILAC_CYTOPLASM
        od[disk((r, c), radii[1], shape=shape)] = LILAC_NUCLEUS
    noise = np.random.default_rng(seed).normal(0, 1.0, od.shape)
    return np.clip(np.array([255.0, 229.0, 202.0]) * 10.0 ** -od + noise, 0, 255).astype(np.uint8)


def _each_found_once(seg, cells: list[tuple[int, int]], radius_um: float) -> None:
    assert len(seg.cells) == len(cells)
    for r, c in cells:
        found = seg.cells.loc[np.hypot(seg.cells["row"] - r, seg.cells["col"] - c).idxmin()]
        assert np.hypot(found["row"] - r, found["col"] - c) < 10
        assert abs(found["area_um2"] - np.pi * radius_um**2) < 0.2 * np.pi * radius_um**2


def test_big_white_cells_crowding_a_field_are_not_taken_for_its_red_cells():
    """A 120 µm field of four big white cells whose pale lilac cytoplasm is more of the stain than
    the fewer, denser pink red cells: the paler colour cluster (the cytoplasm) became the red-cell
    colour and its tint the red-cell tint, so every red cell was "a white cell" (20 found) and no
    cytoplasm was kept."""
    cells = [(r, c) for r in (300, 900) for c in (300, 900)]
    red_cells = [(r + dr, c + dc) for r, c in cells for dr, dc in ((-200, 0), (200, 0), (0, -200), (0, 200))]
    image = _lilac_cells_among_pink_red_cells((1200, 1200), red_cells, cells, (110, 50), 0.2, seed=5)
    _each_found_once(find_cells(image, mpp=0.1), cells, 11.0)


def test_a_crowd_of_big_white_cells_with_few_red_cells_keeps_the_red_cells_colour():
    """A 150 µm field of nine big white cells and twelve red cells between them, a tenth of the
    stain: the stain's colour clusters are the white cells' alone, so every red cell was "a white
    cell" (21 found, no cytoplasm kept). The red cells far from every nucleus, free of the white
    cells' stain, give their colour."""
    cells = [(r, c) for r in (250, 750, 1250) for c in (250, 750, 1250)]
    red_cells = [(r, c) for r in (250, 750, 1250) for c in (500, 1000)]
    red_cells += [(r, c) for r in (500, 1000) for c in (250, 750, 1250)]
    image = _lilac_cells_among_pink_red_cells((1500, 1500), red_cells, cells, (130, 60), 0.3, seed=5)
    _each_found_once(find_cells(image, mpp=0.1), cells, 13.0)


@pytest.mark.parametrize("blur_px", [0, 8])
def test_big_white_cells_on_bare_glass_whose_cytoplasm_is_their_nucleus_hue_are_found(blur_px):
    """A 100 µm field of four big cells on glass (nucleus 4.5 µm, cytoplasm reaching 7.5 µm beyond
    it) whose cytoplasm is their nucleus's dye, thinner (a pale stain; a defocused monocyte): the
    cytoplasm far from the dense nuclei was taken for red cells, its colour — the nuclei's — for
    the red-cell colour, and no nucleus stood out from it: none of the four was found (as another
    lab's pale-stained lymphocyte and neutrophil, and a blurred monocyte, on such fields)."""
    nucleus = np.array([0.30, 0.52, 0.13])
    cells = [(250, 250), (280, 720), (730, 300), (700, 760)]
    od = np.zeros((1000, 1000, 3))
    for r, c in cells:
        od[disk((r, c), 120, shape=od.shape[:2])] = 0.3 * nucleus
        od[disk((r + 10, c - 15), 45, shape=od.shape[:2])] = nucleus
    od = ndi.gaussian_filter(od, (blur_px, blur_px, 0))
    noise = np.random.default_rng(4).normal(0, 1.0, od.shape)
    image = np.clip(WARM_GLASS * 10.0 ** -od + noise, 0, 255).astype(np.uint8)
    seg = find_cells(image, mpp=0.1)
    assert len(seg.cells) == len(cells)
    for r, c in cells:
        found = seg.cells.loc[np.hypot(seg.cells["row"] - r, seg.cells["col"] - c).idxmin()]
        assert np.hypot(found["row"] - r, found["col"] - c) < 10
        assert abs(found["area_um2"] - np.pi * 12.0**2) < 0.3 * np.pi * 12.0**2  # the pale edge: within 30 %


def test_two_touching_white_cells_of_a_close_up_are_two_cells():
    """A 30 × 46 µm close-up of two white cells whose cytoplasm touches: one candidate blob (lobes
    of a close-up's cell are not split), and only the cell at its centre was kept."""
    cells = [(150, 150), (150, 310)]
    red_cells = [(40, 40), (260, 40), (40, 420), (260, 420), (30, 230), (270, 230)]
    image = _lilac_cells_among_pink_red_cells((300, 460), red_cells, cells, (80, 45), 0.4, seed=6)
    _each_found_once(find_cells(image, mpp=0.1), cells, 8.0)


#: Three white cells of a 100 µm field (0.1 µm/px), far enough apart to have red cells between them.
THREE_CELLS = [(250, 250), (250, 750), (750, 500)]
WARM_GLASS = np.array([255.0, 229.0, 202.0])


def _three_cells_field(red_cells: list[tuple[int, int]], red_cell: np.ndarray, radii: tuple[int, int],
                       cytoplasm: np.ndarray, nucleus: np.ndarray, glass: np.ndarray = WARM_GLASS,
                       red_cell_px: int = 37) -> np.ndarray:
    """Red cells of OD ``red_cell`` at ``red_cells`` and white cells at :data:`THREE_CELLS` of
    ``radii`` (cell, nucleus px) with OD ``cytoplasm`` and ``nucleus``, on ``glass``."""
    od = np.zeros((1000, 1000, 3))
    for r, c in red_cells:
        od[disk((r, c), red_cell_px, shape=od.shape[:2])] = red_cell
    for r, c in THREE_CELLS:
        od[disk((r, c), radii[0], shape=od.shape[:2])] = cytoplasm
        od[disk((r, c), radii[1], shape=od.shape[:2])] = nucleus
    noise = np.random.default_rng(5).normal(0, 1.0, od.shape)
    return np.clip(glass * 10.0 ** -od + noise, 0, 255).astype(np.uint8)


def _grid_away_from_the_cells(step: int, clearance: int, start: int = 40, stagger: bool = False
                              ) -> list[tuple[int, int]]:
    """Red-cell centres on a grid (every other row shifted by half a step with ``stagger``), none
    within ``clearance`` px of a white cell's centre."""
    return [(r, c) for r in range(start, 1000, step)
            for c in range(start + stagger * (r // step % 2) * step // 2, 1000, step)
            if min(np.hypot(r - a, c - b) for a, b in THREE_CELLS) > clearance]


def _each_nucleus_found_once(seg, radius_um: float) -> None:
    assert len(seg.cells) == len(THREE_CELLS), seg.cells
    for r, c in THREE_CELLS:
        found = seg.cells.loc[np.hypot(seg.cells["row"] - r, seg.cells["col"] - c).idxmin()]
        assert np.hypot(found["row"] - r, found["col"] - c) < 10
        assert abs(found["nucleus_area_um2"] - np.pi * radius_um**2) < 0.25 * np.pi * radius_um**2


def test_pale_nuclei_of_a_field_among_blue_grey_red_cells_as_dense_as_them_are_found():
    """A 100 µm field in the colours of the close-up above: the red cells are as dense as the
    nuclei, so the field was taken to show none (the cells read as on bare glass), and a nucleus
    this near the red cells' hue carries less density off it (0.07) than the field's floor (0.08):
    no cell was found (128 "cells")."""
    image = _three_cells_field(_grid_away_from_the_cells(80, 110, stagger=True), DENSE_BLUE_GREY_RED_CELL,
                               (62, 45), FAINT_CYTOPLASM, PALE_VIOLET_NUCLEUS, glass=GLASS, red_cell_px=36)
    _each_nucleus_found_once(find_cells(image, mpp=0.1), 4.5)


def test_pale_nuclei_of_a_field_whose_red_cells_scatter_little_are_found():
    """A 100 µm field of a pale stain whose nuclei lie 9° from the red cells' hue (as CellaVision
    nuclei do, 6-13°): they carry 0.064 OD off the red cells' colour, under the field's fixed floor
    (0.08), and no cell was found. The clean red cells' colour scatters by far less (0.004), so
    the floor follows it down."""
    pink = PINK_RED_CELL / np.linalg.norm(PINK_RED_CELL)
    nucleus = 0.4 * pink + 0.6 * LILAC_NUCLEUS / np.linalg.norm(LILAC_NUCLEUS)
    image = _three_cells_field(_grid_away_from_the_cells(110, 140, start=60), 0.25 * pink, (90, 50),
                               0.1 * LILAC_CYTOPLASM, 0.45 * nucleus / np.linalg.norm(nucleus))
    _each_nucleus_found_once(find_cells(image, mpp=0.1), 5.0)


def test_magenta_nuclei_among_dark_red_cells_of_a_field_are_found():
    """A 100 µm field of magenta nuclei (Wright, Leishman-like: no lilac tint) among red cells dark
    enough to pass Otsu's density threshold with them: the field was taken to show no red cells
    (the densest of three classes was asked to be lilac), so the bare-glass tint tests ran and no
    magenta nucleus passed them."""
    magenta = np.array([0.33, 0.86, 0.33])  # tint 0
    image = _three_cells_field(_grid_away_from_the_cells(90, 120), 0.5 * PINK_RED_CELL / np.linalg.norm(PINK_RED_CELL),
                               (75, 50), np.array([0.06, 0.12, 0.05]), magenta)
    _each_nucleus_found_once(find_cells(image, mpp=0.1), 5.0)


def test_cytoplasm_of_the_red_cells_colour_is_the_cell_up_to_the_glass_and_the_red_cell_it_touches():
    """A 100 µm field whose white cells' cytoplasm has exactly the red cells' colour, at half
    their density (a neutrophil in another lab's stain), each cell touching one red cell: no
    colour test can tell that cytoplasm from the red cells, and only the nuclei were kept
    (whole-cell areas of the nucleus alone). The cytoplasm is what lies between the nucleus and
    the glass, up to the red cell it touches, which stays out."""
    pink = PINK_RED_CELL / np.linalg.norm(PINK_RED_CELL)
    touching = [(r, c + 60 + 37) for r, c in THREE_CELLS]
    red_cells = _grid_away_from_the_cells(110, 160, start=60) + touching
    image = _three_cells_field(red_cells, 0.25 * pink, (60, 35), 0.125 * pink, LILAC_NUCLEUS)
    seg = find_cells(image, mpp=0.1)
    _each_nucleus_found_once(seg, 3.5)
    for r, c in THREE_CELLS:
        cell = seg.cells.loc[np.hypot(seg.cells["row"] - r, seg.cells["col"] - c).idxmin()]
        assert abs(cell["area_um2"] - np.pi * 6.0**2) < 0.2 * np.pi * 6.0**2, cell["area_um2"]


def test_a_white_cell_packed_among_red_cells_does_not_take_their_pale_edges():
    """The same red cells, six touching each white cell, whose thin lilac cytoplasm the colour
    tests see: the ring beyond it is red cells and glass, so nothing is flooded from the nucleus
    and the cell keeps its own outline (flooded, it took the red cells' pale rims: +12-24 %)."""
    pink = PINK_RED_CELL / np.linalg.norm(PINK_RED_CELL)
    packed = [(r + 83 * np.cos(a), c + 83 * np.sin(a)) for r, c in THREE_CELLS
              for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)]
    red_cells = _grid_away_from_the_cells(110, 160, start=60) + [(int(r), int(c)) for r, c in packed]
    image = _three_cells_field(red_cells, 0.25 * pink, (45, 35), 0.12 * LILAC_CYTOPLASM, LILAC_NUCLEUS)
    seg = find_cells(image, mpp=0.1)
    _each_nucleus_found_once(seg, 3.5)
    for r, c in THREE_CELLS:
        cell = seg.cells.loc[np.hypot(seg.cells["row"] - r, seg.cells["col"] - c).idxmin()]
        assert cell["area_um2"] < 1.15 * np.pi * 4.5**2, cell["area_um2"]


def _granular_cells_field(red_cells: list[tuple[int, int]], granule_od: float, seed: int = 7) -> np.ndarray:
    """:func:`_three_cells_field` whose white cells (radius 60 px, nucleus 35) have a cytoplasm
    of granules (radius 3 px) of the red cells' own colour, ``granule_od`` dense, on a faint base
    of that colour: an eosinophil whose granules are as dense as the red cells."""
    pink = PINK_RED_CELL / np.linalg.norm(PINK_RED_CELL)
    od = np.zeros((1000, 1000, 3))
    for r, c in red_cells:
        od[disk((r, c), 37, shape=od.shape[:2])] = PINK_RED_CELL
    rng = np.random.default_rng(seed)
    for r, c in THREE_CELLS:
        od[disk((r, c), 60, shape=od.shape[:2])] = 0.1 * pink
        for _ in range(400):
            a, d = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform((35 / 57) ** 2, 1)) * 57
            od[disk((r + d * np.cos(a), c + d * np.sin(a)), 3, shape=od.shape[:2])] = granule_od * pink
        od[disk((r, c), 35, shape=od.shape[:2])] = LILAC_NUCLEUS
    noise = rng.normal(0, 1.0, od.shape)
    return np.clip(WARM_GLASS * 10.0 ** -od + noise, 0, 255).astype(np.uint8)


def test_granular_cytoplasm_as_dense_as_the_red_cells_it_touches_is_the_cell():
    """An eosinophil among red cells, its granules of their colour and as dense: neither colour nor
    density tells its cytoplasm from the red cells it touches, and only the nucleus was kept
    (38 µm² of 113). Red cells are smooth, granules are specks: the granular stain is no red cell,
    so the cytoplasm is flooded up to the red cells' edge, which stay out."""
    packed = [(r + 98 * np.cos(a), c + 98 * np.sin(a)) for r, c in THREE_CELLS
              for a in np.linspace(0, 2 * np.pi, 5, endpoint=False)]
    red_cells = _grid_away_from_the_cells(110, 170, start=60) + [(int(r), int(c)) for r, c in packed]
    seg = find_cells(_granular_cells_field(red_cells, 0.45), mpp=0.1)
    _each_nucleus_found_once(seg, 3.5)
    for r, c in THREE_CELLS:
        cell = seg.cells.loc[np.hypot(seg.cells["row"] - r, seg.cells["col"] - c).idxmin()]
        assert abs(cell["area_um2"] - np.pi * 6.0**2) < 0.2 * np.pi * 6.0**2, cell["area_um2"]


def test_white_cells_a_little_bluer_than_the_red_cells_and_more_of_the_stain_keep_their_cytoplasm():
    """A 100 µm field of 16 white cells (8.5 µm) whose cytoplasm is 7° bluer than the red cells
    between them and much of the stain: the stain's colour cluster lay between the two colours
    (5.5° off the red cells), and four cells shrank to their nucleus (55 µm² of 227). The red
    cells far from every nucleus are less blue than that cluster: theirs is the red-cell colour."""
    pink = PINK_RED_CELL / np.linalg.norm(PINK_RED_CELL)
    bluer = 0.6 * pink + 0.4 * LILAC_CYTOPLASM / np.linalg.norm(LILAC_CYTOPLASM)
    cells = [(r, c) for r in range(215, 786, 190) for c in range(215, 786, 190)]
    od = np.zeros((1000, 1000, 3))
    for r in range(20, 1000, 90):
        for c in range(20, 1000, 90):
            if min(np.hypot(r - a, c - b) for a, b in cells) > 85 + 37:
                od[disk((r, c), 37, shape=od.shape[:2])] = PINK_RED_CELL
    for r, c in cells:
        od[disk((r, c), 85, shape=od.shape[:2])] = 0.25 * bluer / np.linalg.norm(bluer)
        od[disk((r, c), 35, shape=od.shape[:2])] = LILAC_NUCLEUS
    noise = np.random.default_rng(5).normal(0, 1.0, od.shape)
    image = np.clip(WARM_GLASS * 10.0**-od + noise, 0, 255).astype(np.uint8)
    _each_found_once(find_cells(image, mpp=0.1), cells, 8.5)


def test_a_pale_cell_touching_a_darker_one_is_found_at_its_own_nucleus():
    """A 100 µm field: a pale monocyte-like cell (nucleus 0.35 of the lilac dye) touching a
    lymphocyte-like cell with dense cytoplasm. The crop-wide nucleus threshold, set by the darker
    cell, passed its cytoplasm but not the pale nucleus: the pale cell's candidate yielded the
    darker cell a second time (centred on their junction) and the pale cell was never found."""
    cells = [(500, 420), (500, 580)]
    od = np.zeros((1000, 1000, 3))
    for r in range(40, 1000, 110):
        for c in range(40, 1000, 110):
            if min(np.hypot(r - a, c - b) for a, b in cells) > 130:
                od[disk((r, c), 37, shape=od.shape[:2])] = PINK_RED_CELL
    for (r, c), cytoplasm, nucleus in zip(cells, (0.5, 0.12), (1.0, 0.35), strict=True):
        od[disk((r, c), 80, shape=od.shape[:2])] = cytoplasm * LILAC_CYTOPLASM
        od[disk((r, c), 50, shape=od.shape[:2])] = nucleus * LILAC_NUCLEUS
    noise = np.random.default_rng(3).normal(0, 1.0, od.shape)
    image = np.clip(WARM_GLASS * 10.0 ** -od + noise, 0, 255).astype(np.uint8)
    seg = find_cells(image, mpp=0.1)
    assert len(seg.cells) == 2, seg.cells
    pale = seg.cells.loc[np.hypot(seg.cells["row"] - 500, seg.cells["col"] - 580).idxmin()]
    assert np.hypot(pale["row"] - 500, pale["col"] - 580) < 10
    assert abs(pale["nucleus_area_um2"] - np.pi * 5.0**2) < 0.25 * np.pi * 5.0**2


def test_pale_white_cells_far_from_blue_grey_red_cells_denser_than_them_are_not_the_red_cells():
    """A Taleqani-stained field (0.45 µm/px) whose blue-grey red cells are denser than its two
    pale pink-lilac white cells, which lie on glass far from them: the dense stain is the red
    cells, and the stain far from it the white cells, whose colour was taken for the red cells'
    (every red cell then a white cell: 40 found on such a field at 0.47 µm/px, 4 at 0.444)."""
    mpp = 0.45
    od = np.zeros((400, 400, 3))
    red_cell = 0.6 * np.array([0.74, 0.57, 0.36])
    cells = [(110, 110), (290, 290)]
    for r in range(20, 400, 30):
        for c in range(20, 400, 30):
            if min(np.hypot(r - cr, c - cc) for cr, cc in cells) > 60:
                od[disk((r, c), 8.5, shape=od.shape[:2])] = red_cell
    for r, c in cells:
        od[disk((r, c), 28, shape=od.shape[:2])] = 0.28 * np.array([0.25, 0.97, 0.035])
        od[disk((r, c), 18, shape=od.shape[:2])] = 0.32 * np.array([0.3, 0.93, 0.2])
    noise = np.random.default_rng(2).normal(0, 1.0, od.shape)
    image = np.clip(GLASS * 10.0 ** -ndi.gaussian_filter(od, (1, 1, 0)) + noise, 0, 255).astype(np.uint8)
    seg = find_cells(image, mpp=mpp)
    assert len(seg.cells) == len(cells)
    for r, c in cells:
        assert np.hypot(seg.cells["row"] - r, seg.cells["col"] - c).min() < 8
