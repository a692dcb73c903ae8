import pytest

from fedfleet.privacy.config import OcclusionJobConfig, load_job_config
from fedfleet.privacy.jobs import run_occlusion_job
from fedfleet.privacy.seeding import Stream, derive_seed, stream

OCCLUDE_JOB = {"data": {"dataset": "digits", "train_size": 200, "test_size": 60, "holdout_size": 100,
                        "public_size": 200},
               "model": {"name": "mlp", "epochs": 2, "lr": 0.003},
               "occlusion": {"shapes": ["rect"], "sizes": [0.5], "stride": 0.25},
               "rule": {"name": "weighted"}, "eval_size": 40, "examples": 2}


@pytest.mark.parametrize(("overrides", "label"), [
    ([], "100 held-out images (not used for selection)"),
    (["data.holdout_size=0"], "20 validation images not used for selection"),
    (["data.holdout_size=0", "eval_size=60"], "all 60 validation images, including the 60 used for selection"),
])
def test_occlusion_accuracies_avoid_the_images_the_region_was_selected_on(overrides, label):
    result = run_occlusion_job(load_job_config(OcclusionJobConfig, OCCLUDE_JOB, overrides), random_draws=2)
    assert result.accuracy_images.startswith(label)
    assert set(result.accuracies) == {"clear", "occluded", "retrained_occluded"}
    assert result.summary()["accuracy_images"] == result.accuracy_images
    if result.holdout:  # same model, region and held-out images as the held-out availability check
        assert result.accuracies["occluded"] == result.holdout["chosen"]


def test_streams_differ_by_tag_and_repeat_by_seed():
    draws = {tag: stream(0, tag).integers(2**31, size=4).tolist() for tag in Stream}
    assert len({tuple(d) for d in draws.values()}) == len(Stream)
    assert stream(3, Stream.ATTACK_KEYS).integers(2**31, size=4).tolist() == \
        stream(3, Stream.ATTACK_KEYS).integers(2**31, size=4).tolist()
    assert derive_seed(0, Stream.ENCRYPTED_MODEL, 1) != derive_seed(0, Stream.ENCRYPTED_MODEL, 2)
    assert 0 <= derive_seed(2**32 - 1, Stream.MODEL_INIT) < 2**32
