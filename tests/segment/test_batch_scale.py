"""One scale for a batch: per-image estimates pooled over the images of one pixel size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from segment_fields import MPP, field

from hemascope.cli.main import main
from hemascope.segment.batch_scale import estimate_field_scales, pool_estimates, size_key, size_keys
from hemascope.segment.scale import ScaleEstimate


def _estimates(values, confidences):
    return [ScaleEstimate(v, c, {"red_cell_arcs": 1}) for v, c in zip(values, confidences, strict=True)]


def test_low_confidence_and_lone_wrong_estimates_take_the_source_median():
    own = _estimates([0.098, 0.100, 0.102, 0.105, 0.150, 0.075, 0.140],
                     [0.9, 0.8, 1.0, 0.7, 0.9, 0.2, 0.3])  # 0.150: confident but alone; 0.075, 0.140: guesses
    pooled = pool_estimates(own, ["a"] * len(own))
    assert all(p.mpp == pytest.approx(0.101, rel=0.03) for p in pooled)
    assert all(not p.low_confidence and p.cues["batch_images"] == 7 for p in pooled)
    assert [p.cues["own_mpp"] for p in pooled] == [e.mpp for e in own]
    assert "this image alone: 0.075" in pooled[5].reason


def test_close_ups_without_confident_estimates_take_the_weighted_median_not_a_lone_confident_one():
    """Close-ups of one cell: every estimate a flagged guess spread around the truth (~0.21) and one
    confident outlier (0.30) with a guess beside it. The densest window was the outlier's; now the
    group takes the confidence-weighted median of all its estimates."""
    own = _estimates([0.17, 0.18, 0.19, 0.19, 0.20, 0.21, 0.22, 0.23, 0.24, 0.28, 0.30],
                     [0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.74])
    pooled = pool_estimates(own, ["a"] * len(own))
    assert all(p.mpp == pytest.approx(0.21, rel=0.1) for p in pooled)
    assert all(p.low_confidence for p in pooled)  # still said to be a guess


def test_a_folder_of_close_ups_is_not_decided_by_a_confident_wrong_cluster():
    """120-px close-ups: three red-cell answers agree, confidently and wrongly (0.13), the others
    are guesses around the truth (0.19). A group made of close-ups takes the weighted median."""
    values = [0.13, 0.13, 0.135] + [0.17, 0.18, 0.19, 0.20, 0.21, 0.22, 0.19, 0.18, 0.2, 0.17, 0.2, 0.19, 0.18, 0.21]
    confidences = [0.6, 0.6, 0.6] + [0.1, 0.1, 0.2, 0.1, 0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.1, 0.2, 0.1, 0.2]
    own = [ScaleEstimate(v, c, {"path": "red_cells", "white_cell_arcs": 3})
           for v, c in zip(values, confidences, strict=True)]
    pooled = pool_estimates(own, ["a"] * len(own))
    assert pooled[0].mpp == pytest.approx(0.18, rel=0.1)
    crops = _estimates(values, confidences)  # the same values from crops with red cells: the mode
    assert pool_estimates(crops, ["a"] * len(crops))[0].mpp == pytest.approx(0.13, rel=0.05)


def test_two_stray_confident_estimates_that_agree_are_not_a_second_scale():
    # one DeepAPL patient's folder: 0.269 and 0.286 were confident, agreeing with each other only
    own = _estimates([0.21, 0.212, 0.215, 0.208, 0.22, 0.205, 0.217, 0.269, 0.286, 0.09, 0.9],
                     [0.9] * 9 + [0.2, 0.2])
    pooled = pool_estimates(own, ["a"] * 11)
    assert all(p.mpp == pytest.approx(0.213, rel=0.03) and not p.low_confidence for p in pooled)


def test_a_broad_spread_of_one_scale_is_not_two_scales():
    # the confident estimates of another DeepAPL patient (0.21 µm/px): broad, but one peak
    values = [0.152, 0.159, 0.168, 0.182, 0.19, 0.198, 0.199, 0.204, 0.204, 0.207, 0.21, 0.211,
              0.214, 0.214, 0.223, 0.224, 0.227, 0.233, 0.264]
    pooled = pool_estimates(_estimates(values, [0.9] * len(values)), ["a"] * len(values))
    assert all(p.mpp == pytest.approx(0.207, rel=0.03) and not p.low_confidence for p in pooled)


def test_two_magnifications_of_one_size_are_not_averaged_and_the_pooled_ones_are_flagged():
    own = _estimates([0.10, 0.101, 0.099, 0.103, 0.102, 0.2, 0.205, 0.198, 0.19, 0.11, 0.3],
                     [0.9] * 9 + [0.2, 0.2])
    pooled = pool_estimates(own, ["a"] * 11)
    assert all(p.mpp == pytest.approx(e.mpp, rel=0.1) for p, e in zip(pooled[:9], own[:9], strict=True))
    assert all(p.low_confidence for p in pooled[:5]) and not any(p.low_confidence for p in pooled[5:9])
    assert pooled[9].mpp == pytest.approx(0.101, rel=0.03) and pooled[9].low_confidence  # either scale
    # a guess near neither takes the nearer scale (the second), still flagged
    assert pooled[10].mpp == pytest.approx(0.2, rel=0.03) and pooled[10].low_confidence
    assert pooled[10].cues["own_mpp"] == 0.3 and "second scale" in pooled[10].reason


def test_a_guess_far_from_both_scales_of_a_run_takes_the_nearer_one_not_its_own():
    """Ten leukaemic fields of one size (Taleqani): two magnifications seen, and two flagged
    guesses 2.7-6.4 times below both (a field read from one nucleus, one from 3.6 red-cell
    circumferences) kept their own scale before — its blasts then cut at up to six times their size."""
    own = _estimates([0.64, 0.643, 0.563, 0.528, 0.488, 0.454, 0.486, 0.069, 0.175, 0.471],
                     [0.59, 0.59, 0.68, 0.8, 0.79, 0.95, 0.68, 0.1, 0.13, 0.73])
    pooled = pool_estimates(own, ["a"] * 10)
    assert pooled[0].mpp == 0.64 and pooled[1].mpp == 0.643  # the second scale's confident ones: their own
    for guess in pooled[7:9]:
        assert guess.mpp == pytest.approx(0.486, rel=0.05) and guess.low_confidence
        assert "this image alone" in guess.reason


def test_pictures_of_one_size_but_no_one_scale_keep_their_own_estimates():
    """Cell crops of different sizes resized to one pixel size (a public data set's tight boxes):
    the estimates spread over ×2 with no scale most agree on. Pooled, 49 % of such PBC crops were
    confidently > 25 % wrong; each keeps its own estimate (BENCHMARKS.md)."""
    values = np.geomspace(0.047, 0.105, 20)
    own = _estimates(values, [0.9, 0.3] * 10)
    assert pool_estimates(own, ["a"] * 20) == own
    tight = _estimates(np.linspace(0.095, 0.11, 8), [0.9, 0.3] * 4)  # one scale
    assert all("batch_images" in p.cues for p in pool_estimates(tight, ["a"] * 8))


def test_resized_boxes_whose_few_confident_estimates_lie_at_two_scales_are_no_two_magnifications():
    """Boxes of 45-100 % of crops resized to one pixel size, mostly unsure, spread over ×2.7, with
    six confident estimates in two bunches 1.4 times apart (as DeepAPL's resized boxes: pooled,
    0.793 of them within ±15 % fell to 0.567): a continuum, so each keeps its own estimate."""
    values = [*np.geomspace(0.055, 0.15, 40), 0.09, 0.091, 0.093, 0.125, 0.127, 0.13]
    own = _estimates(values, [0.3] * 40 + [0.9] * 6)
    assert pool_estimates(own, ["a"] * len(own)) == own


def test_small_groups_other_sources_and_given_scales_are_left_alone():
    own = _estimates([0.1, 0.2, 0.1, 0.1], [0.2, 0.9, 0.9, 0.9])
    values = [*own, 0.3, None]
    keys = ["a", "a", "a", "a", "a", "a"]  # four estimates: too few to pool
    assert pool_estimates(values, keys) == values
    many = _estimates([0.1] * 5 + [0.3], [0.9] * 5 + [0.2])
    pooled = pool_estimates(many, ["a"] * 5 + ["b"])
    assert pooled[5].mpp == 0.3 and "batch_images" not in pooled[5].cues  # its own source
    assert size_key((360, 363, 3)) == size_key((360, 363)) != size_key((363, 360))


def test_pictures_of_sizes_no_others_share_are_pooled_together_when_they_agree():
    # tight boxes cut from one camera's fields: every picture its own size, one scale
    values = [0.09, 0.1, 0.1, 0.11, 0.1, 0.13, 0.1]
    own = _estimates(values, [0.3] * 7)
    keys = [(100 + k, 90 + k) for k in range(7)]
    pooled = pool_estimates(own, size_keys(keys))
    assert {round(p.mpp, 6) for p in pooled} == {0.1}
    assert pooled[0].cues["batch_images"] == 7 and "sizes no others share" in pooled[0].reason
    # a size group of its own is pooled apart from them; four lone pictures are too few to pool
    group = _estimates([0.3] * 5, [0.9] * 5)
    pooled = pool_estimates([*group, *own[:4]], size_keys([(50, 50)] * 5 + keys[:4]))
    assert [round(p.mpp, 6) for p in pooled] == [0.3] * 5 + values[:4]
    # pictures of many sizes and no one scale keep their own estimates
    spread = _estimates([0.05, 0.1, 0.2, 0.4, 0.8, 0.1], [0.3] * 6)
    assert pool_estimates(spread, size_keys([(100 + k, 100) for k in range(6)])) == spread


def test_fields_of_one_folder_share_one_estimate_and_segment_says_so(tmp_path, capsys):
    image, _, _ = field()
    folder = tmp_path / "fields"
    folder.mkdir()
    for k, (r, c) in enumerate([(0, 0), (0, 384), (384, 0), (384, 384), (192, 192)]):
        Image.fromarray(image[r:r + 384, c:c + 384]).save(folder / f"f{k}.png")
    Image.fromarray(image[:300, :300]).save(folder / "other_size.png")
    paths = sorted(str(p) for p in folder.iterdir())
    scales = estimate_field_scales(paths)
    shared = {round(scales[p].mpp, 6) for p in paths if "other_size" not in p}
    assert len(shared) == 1 and shared.pop() == pytest.approx(MPP, rel=0.15)
    assert scales[str(folder / "f0.png")].cues["batch_images"] == 5
    assert "batch_images" not in scales[str(folder / "other_size.png")].cues  # alone in its size

    out = tmp_path / "out"
    assert main(["segment", str(folder), "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out.count("shared by 5 images of this size") == 5
    table = pd.read_csv(out / "cells.csv")
    per_image = table.groupby("source")["mpp"].first()
    assert per_image.drop(str(folder / "other_size.png")).nunique() == 1
    assert (table["mpp_source"] == "estimated").all()


def test_a_cameras_tiff_fields_are_pictures_pooled_like_pngs(tmp_path):
    import tifffile

    from hemascope.io import open_slide

    image, _, _ = field()
    folder = tmp_path / "camera"
    folder.mkdir()
    for k, (r, c) in enumerate([(0, 0), (0, 384), (384, 0), (384, 384), (192, 192)]):
        tifffile.imwrite(folder / f"f{k}.tif", image[r:r + 384, c:c + 384], photometric="rgb")
    pyramid = tmp_path / "scan.tif"  # a pyramid of its own: a scanned slide, not a picture
    with tifffile.TiffWriter(pyramid) as tif:
        tif.write(image, subifds=1, tile=(256, 256), photometric="rgb")
        tif.write(image[::2, ::2], subfiletype=1, tile=(256, 256), photometric="rgb")
    with open_slide(folder / "f0.tif") as picture, open_slide(pyramid) as scan:
        assert picture.format == "tiff" and picture.is_picture and not scan.is_picture
    paths = sorted(str(p) for p in folder.iterdir())
    scales = estimate_field_scales(paths)
    assert {round(scales[p].mpp, 6) for p in paths} == {round(scales[paths[0]].mpp, 6)}
    assert scales[paths[0]].cues["batch_images"] == 5


def test_classify_pools_the_estimates_of_a_batch(tiny_model):
    from hemascope.classify import classify_images

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (80, 80, 3), dtype=np.uint8) for _ in range(6)]
    guesses = iter(_estimates([0.25, 0.26, 0.24, 0.25, 0.4, 0.25], [0.9, 0.9, 0.9, 0.9, 0.1, 0.9]))
    result = classify_images(images, tiny_model, device="cpu", estimate=lambda image: next(guesses))
    assert result.table["mpp"].round(6).nunique() == 1
    assert result.table["mpp"].iloc[0] == pytest.approx(0.25, rel=0.02)
    assert not result.table["mpp_low_confidence"].any()  # the guess took its source's confident scale


def test_a_large_batch_of_one_size_is_surveyed_and_the_rest_take_the_scale_unestimated(tmp_path):
    """Of 12 pictures of one size, 5 (spread over them) are estimated; they agree, so the other 7
    take their scale unread; with two magnifications among the surveyed ones every picture is
    estimated and pooled as before."""
    from hemascope.classify.images import estimate_picture_scales

    rng = np.random.default_rng(2)
    paths = []
    for k in range(12):
        paths.append(tmp_path / f"p{k:02d}.png")
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(paths[-1])
    seen = []

    def one_scale(image):
        seen.append(image.shape)
        return ScaleEstimate(0.1 + 0.001 * len(seen), 0.9, {"red_cell_arcs": 1})

    scales = estimate_picture_scales(paths, one_scale, survey=5)
    assert len(seen) == 5 and seen[0] == (40, 50, 3)
    assert {round(s.mpp, 6) for s in scales} == {0.103}  # the median of the five
    assert sum("surveyed" in s.cues for s in scales) == 7 and not scales[0].low_confidence

    seen.clear()
    two = iter(_estimates([0.1, 0.2] * 6, [0.9] * 12))
    scales = estimate_picture_scales(paths, lambda image: seen.append(1) or next(two), survey=5)
    assert len(seen) == 12 and not any("surveyed" in s.cues for s in scales)
    assert {round(s.mpp, 1) for s in scales} == {0.1, 0.2}
    assert len(estimate_picture_scales(paths[:5], one_scale, survey=5)) == 5  # no survey at or under it


def test_an_estimator_that_breaks_on_one_image_fails_that_image_only(tiny_model):
    from hemascope.classify import classify_images

    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (80, 80, 3), dtype=np.uint8) for _ in range(3)]
    calls = iter([0.25, "boom", 0.25])

    def estimate(image):
        value = next(calls)
        if value == "boom":
            raise IndexError("index 21 is out of bounds")  # as ArcVotes did on some real crops
        return value

    result = classify_images(images, tiny_model, device="cpu", estimate=estimate)
    assert list(result.table["path"]) == ["<array 0>", "<array 2>"]
    assert "IndexError" in dict(result.failed)["<array 1>"]
