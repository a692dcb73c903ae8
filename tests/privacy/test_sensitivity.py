import numpy as np
import pytest
import torch
from PIL import Image

from fedfleet.errors import ConfigError, DataError
from fedfleet.privacy.config import OcclusionJobConfig, load_job_config
from fedfleet.privacy.inpainting import LearnedInpainter, TeleaInpainter
from fedfleet.privacy.occlusion import (
    OcclusionRegion,
    file_saliency,
    generate_regions,
    occlude,
    uniform_saliency,
    unrestored_share,
)
from fedfleet.privacy.occlusion_selection import OcclusionRule, OcclusionSelector, score_region
from fedfleet.privacy.sensitivity import attribute_labels, sensitivity_map
from fedfleet.privacy.training import train_classifier

CORNER = OcclusionRegion("rect", 4, 4, ((0, 0),), (8, 8))


@pytest.fixture(scope="module")
def learned(digits):
    regions = generate_regions((8, 8), ("rect",), (0.5,), stride=0.25)
    return LearnedInpainter(hidden=8, epochs=8, random_state=0).fit(digits.train.x[:400], regions)


def test_the_learned_inpainter_restores_what_telea_cannot(digits, learned):
    images = digits.test.x[:200]
    occluded, sensitive = occlude(images, CORNER), uniform_saliency(200, (8, 8))
    reference = images.mean(dim=0)
    telea = unrestored_share(images, TeleaInpainter(2).inpaint(occluded, CORNER), sensitive, reference)
    trained = unrestored_share(images, learned.inpaint(occluded, CORNER), sensitive, reference)
    assert trained < 0.8 * telea
    restored = learned.inpaint(occluded, CORNER)
    assert torch.equal(restored[:, :, ~CORNER.mask()], images[:, :, ~CORNER.mask()])  # visible pixels kept


def test_unrestored_share_is_zero_for_exact_and_one_for_the_mean_reference(make_images):
    images = make_images(10)
    sensitive = uniform_saliency(10, (8, 8))
    reference = images.mean(dim=0)
    assert unrestored_share(images, images, sensitive, reference) == 0.0
    assert unrestored_share(images, reference.expand_as(images), sensitive, reference) == pytest.approx(1.0)


def test_security_is_the_worst_case_over_the_inpainters(digits, learned):
    model = train_classifier(digits.train.subset(np.arange(300)), "mlp", epochs=2)
    data = digits.test.subset(np.arange(80))
    score = score_region(CORNER, model, data.x, data.y, uniform_saliency(80, (8, 8)),
                         [TeleaInpainter(2), learned])
    assert set(score.unrestored) == {"telea", "learned"}
    assert score.security == min(score.unrestored.values()) == score.unrestored["learned"]


def test_nothing_stated_means_every_pixel_is_sensitive_not_the_task_models_saliency(digits):
    data = digits.test.subset(np.arange(20))
    selector = OcclusionSelector([CORNER], OcclusionRule("weighted"))
    assert torch.allclose(selector.saliency(data), torch.full((20, 8, 8), 1 / 64))


def test_a_mask_file_states_the_sensitive_pixels(tmp_path):
    marked = np.zeros((8, 8))
    marked[4:, 4:] = 1
    np.save(tmp_path / "mask.npy", marked)
    Image.fromarray((marked * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    for name in ("mask.npy", "mask.png"):
        sensitive = file_saliency(tmp_path / name, 3, (8, 8))
        assert sensitive.shape == (3, 8, 8) and float(sensitive[0, 4:, 4:].sum()) == pytest.approx(1.0)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="cannot read it"):  # allow_pickle=False: nothing is executed
        file_saliency(tmp_path / "objects.npy", 1, (8, 8))
    np.save(tmp_path / "small.npy", np.ones((4, 4)))
    with pytest.raises(DataError, match="expected 8x8"):
        file_saliency(tmp_path / "small.npy", 1, (8, 8))
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read it"):
        file_saliency(tmp_path / "bad.png", 1, (8, 8))


def test_a_model_of_the_sensitive_attribute_gives_the_saliency(digits):
    groups = [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert attribute_labels(torch.tensor([0, 7, 4, 5]), groups, 10).tolist() == [0, 1, 0, 1]
    scored = digits.test.subset(np.arange(10))
    sensitive = sensitivity_map(scored, digits.train.subset(np.arange(300)), groups=groups, model_name="mlp",
                                epochs=1)
    assert sensitive.shape == (10, 8, 8)
    assert torch.allclose(sensitive.flatten(1).sum(dim=1), torch.ones(10))
    with pytest.raises(ConfigError, match="exactly one"):
        attribute_labels(torch.tensor([0]), [[0, 1], [2]], 10)


def test_two_statements_of_what_is_sensitive_are_a_config_error():
    with pytest.raises(ConfigError, match="at most one"):
        load_job_config(OcclusionJobConfig, {"security": {"sensitive_boxes": [[0, 0, 0.5, 0.5]],
                                                          "sensitive_mask": "m.npy"}})
