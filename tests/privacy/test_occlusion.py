import math
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.errors import ConfigError, DataError
from fedfleet.privacy.occlusion import (
    OcclusionRegion,
    box_saliency,
    centred_region,
    covered_saliency,
    generate_regions,
    gradient_saliency,
    inpaint,
    occlude,
)
from fedfleet.privacy.training import train_classifier


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(6, 32), cols=st.integers(6, 32), size=st.floats(0.1, 0.3),
       stride=st.floats(0.05, 0.5), count=st.integers(1, 2))
def test_regions_stay_inside_the_image_and_cover_the_stated_area(rows, cols, size, stride, count):
    regions = generate_regions((rows, cols), ("rect",), (size,), count=count, stride=stride, max_candidates=30)
    height, width = max(1, round(size * rows)), max(1, round(size * cols))
    assert regions
    for region in regions:
        assert len(region.corners) == count
        for top, left in region.corners:
            assert top >= 0 and top + height <= rows and left >= 0 and left + width <= cols
        assert region.mask().shape == (rows, cols)
        assert region.area == count * height * width  # disjoint boxes: nothing double-counted


def test_ellipses_stay_inside_their_boxes_with_the_inscribed_area():
    region = OcclusionRegion("ellipse", 10, 14, ((3, 5),), (20, 24))
    covered = region.mask()
    assert not covered[:3].any() and not covered[13:].any() and not covered[:, :5].any() and not covered[:, 19:].any()
    assert region.area == pytest.approx(math.pi / 4 * 10 * 14, rel=0.1)


def test_regions_outside_the_image_or_overlapping_are_rejected():
    with pytest.raises(DataError, match="leaves"):
        OcclusionRegion("rect", 4, 4, ((6, 0),), (8, 8))
    with pytest.raises(DataError, match="overlap"):
        OcclusionRegion("rect", 4, 4, ((0, 0), (2, 2)), (8, 8))


def test_parameters_that_cannot_fit_are_config_errors():
    with pytest.raises(ConfigError, match="do not fit"):
        generate_regions((8, 8), ("rect",), (0.75,), count=2)
    with pytest.raises(ConfigError, match="fraction"):
        generate_regions((8, 8), ("rect",), (1.5,))


def test_candidate_sampling_is_capped_and_seeded():
    first = generate_regions((28, 28), ("rect",), (0.25,), stride=0.04, max_candidates=10, random_state=1)
    assert len(first) == 10
    assert first == generate_regions((28, 28), ("rect",), (0.25,), stride=0.04, max_candidates=10, random_state=1)


def test_occlude_replaces_exactly_the_region(make_images):
    images = make_images(3, (1, 8, 8))
    region = OcclusionRegion("rect", 2, 3, ((1, 4),), (8, 8))
    occluded = occlude(images, region, fill=0.5)
    inside = region.mask()
    assert (occluded[:, :, inside] == 0.5).all()
    assert torch.equal(occluded[:, :, ~inside], images[:, :, ~inside])


def test_occlusion_of_wrong_sized_images_is_rejected(make_images):
    with pytest.raises(DataError, match="do not match"):
        occlude(make_images(2, (1, 9, 9)), OcclusionRegion("rect", 2, 2, ((0, 0),), (8, 8)))


def test_inpainting_fills_holes_from_their_surroundings():
    images = torch.full((1, 1, 16, 16), 0.8)
    region = centred_region(OcclusionRegion("rect", 4, 4, ((0, 0),), (16, 16)))
    restored = inpaint(occlude(images, region), region, radius=3)
    assert torch.allclose(restored, images, atol=3 / 255)  # the hole was 0.8 away before inpainting


def test_gradient_saliency_is_a_distribution_per_image(digits):
    model = train_classifier(digits.train.subset(range(200)), "mlp", epochs=1)
    saliency = gradient_saliency(model, digits.test.x[:5], digits.test.y[:5])
    assert saliency.shape == (5, 8, 8) and (saliency >= 0).all()
    assert torch.allclose(saliency.flatten(1).sum(dim=1), torch.ones(5))
    whole = OcclusionRegion("rect", 8, 8, ((0, 0),), (8, 8))
    assert covered_saliency(saliency, whole) == pytest.approx(1.0)


def test_sensitive_boxes_set_the_covered_share():
    saliency = box_saliency([[0.0, 0.0, 0.5, 0.5]], 2, (8, 8))  # the top-left quarter
    half = OcclusionRegion("rect", 2, 4, ((0, 0),), (8, 8))  # half of it
    assert covered_saliency(saliency, half) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="top, left, height, width"):
        box_saliency([[0.0, 0.5]], 1, (8, 8))


def test_unknown_shapes_and_inpainting_methods_are_config_errors(make_images):
    with pytest.raises(ConfigError, match="occlusion shape"):
        OcclusionRegion("star", 2, 2, ((0, 0),), (8, 8))
    region = OcclusionRegion("rect", 2, 2, ((0, 0),), (8, 8))
    with pytest.raises(ConfigError, match="inpainting method"):
        inpaint(make_images(1), region, method="magic")


def test_sensitive_boxes_outside_the_image_are_config_errors():
    with pytest.raises(ConfigError, match="cover no pixel"):
        box_saliency([[1.0, 1.0, 0.5, 0.5]], 1, (8, 8))


def test_three_regions_on_a_one_pixel_grid_are_sampled_lazily():
    # C(484, 3) = 18.8 million corner triples: listing them does not finish; sampling takes well under a second
    start = time.perf_counter()
    regions = generate_regions((28, 28), ("rect", "ellipse"), (0.25,), count=3, stride=1 / 28, max_candidates=200,
                               random_state=0)
    assert time.perf_counter() - start < 5.0
    assert len(regions) == 400 and len(set(regions)) == 400  # OcclusionRegion checks each fits and is disjoint
    assert all(len(r.corners) == 3 and r.area > 0 for r in regions)
    assert regions == generate_regions((28, 28), ("rect", "ellipse"), (0.25,), count=3, stride=1 / 28,
                                       max_candidates=200, random_state=0)
    tops = {corner[0] for region in regions for corner in region.corners}
    assert len(tops) > 15  # spread over the grid, not clustered at its start
