import numpy as np
import pytest

from fedfleet.errors import ConfigError
from fedfleet.privacy.inpainting import TeleaInpainter
from fedfleet.privacy.occlusion import OcclusionRegion, generate_regions, occlude
from fedfleet.privacy.occlusion_selection import OcclusionRule, OcclusionSelector, train_on_occluded
from fedfleet.privacy.training import accuracy, train_classifier


@pytest.fixture(scope="module")
def model_and_data(digits):
    model = train_classifier(digits.train.subset(np.arange(600)), "mlp", epochs=6, lr=3e-3)
    return model, digits.test.subset(np.arange(80))


REGIONS = generate_regions((8, 8), ("rect",), (0.5,), stride=0.25)


def test_chosen_region_meets_the_floor_and_is_the_most_secure_that_does(model_and_data):
    model, data = model_and_data
    selector = OcclusionSelector(REGIONS, OcclusionRule("constrained", min_availability=0.3),
                                 inpainters=[TeleaInpainter(radius=2)]).fit(model, data)
    chosen = selector.scores_[selector.target_index_]
    assert chosen.availability >= 0.3
    assert chosen.security == max(s.security for s in selector.scores_ if s.availability >= 0.3)
    occluded = selector.transform(data.x)
    assert (occluded[:, :, selector.target_.mask()] == 0).all()


def test_security_rewards_covering_the_given_sensitive_box(model_and_data):
    model, data = model_and_data
    selector = OcclusionSelector(REGIONS, OcclusionRule("constrained", min_availability=0.0),
                                 saliency_weight=1.0, sensitive_boxes=[[0.5, 0.5, 0.5, 0.5]]).fit(model, data)
    assert selector.target_ == OcclusionRegion("rect", 4, 4, ((4, 4),), (8, 8))
    assert selector.scores_[selector.target_index_].saliency_covered == pytest.approx(1.0)


def test_confidence_availability_is_deterministic(model_and_data):
    model, data = model_and_data
    runs = [OcclusionSelector(REGIONS, OcclusionRule("weighted"), availability="confidence").fit(model, data)
            for _ in range(2)]
    assert [s.as_row() for s in runs[0].scores_] == [s.as_row() for s in runs[1].scores_]


def test_a_model_trained_on_occluded_images_recovers_availability(digits, model_and_data):
    model, data = model_and_data
    region = OcclusionRegion("rect", 4, 4, ((2, 2),), (8, 8))
    retrained = train_on_occluded(digits.train.subset(np.arange(600)), region, "mlp", epochs=6, lr=3e-3)
    hidden = occlude(data.x, region)
    assert accuracy(retrained, hidden, data.y) > accuracy(model, hidden, data.y)


def test_bad_settings_are_config_errors(model_and_data):
    model, data = model_and_data
    with pytest.raises(ConfigError, match="saliency_weight"):
        OcclusionSelector(REGIONS, saliency_weight=1.5).fit(model, data)
    with pytest.raises(ConfigError, match="availability measure"):
        OcclusionSelector(REGIONS, availability="recall").fit(model, data)  # type: ignore[arg-type]
