import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from fedfleet.data.datasets import ArrayDataset
from fedfleet.errors import ConfigError, DataError
from fedfleet.privacy.mask_rule import select_mask
from fedfleet.privacy.mask_selection import EncryptionMaskSelector, MaskRule
from fedfleet.privacy.masks import MaskKey
from fedfleet.privacy.selection import SelectionError
from fedfleet.privacy.training import accuracy

PATENT_RULE = MaskRule("constrained", max_original_accuracy=0.5, max_attack_ssim=None, max_attacker_accuracy=None)
KEYS = [MaskKey("sign", 5, "sign_flip", index=0), MaskKey("noise", 6, "add_clip", strength=0.1, index=1)]


@pytest.fixture(scope="module")
def parts(digits):
    return digits.train.subset(np.arange(300, 900)), digits.test.subset(np.arange(150)), \
        digits.train.subset(np.arange(300))


def _selector(rule=None, seed=0):
    return EncryptionMaskSelector(KEYS, rule or PATENT_RULE, model="mlp", original_models=("mlp", "cnn"),
                                  epochs=8, lr=3e-3, encrypted_training="per_mask", attacks=("average",),
                                  n_examples=3, random_state=seed)


@pytest.fixture(scope="module")
def fitted(parts):
    return _selector().fit(*parts)


def test_sign_flip_keeps_the_encrypted_model_and_defeats_the_original(fitted):
    flip, weak_noise = fitted.scores_
    assert flip.encrypted_accuracy > 0.7 and flip.original_accuracy < 0.5
    assert weak_noise.original_accuracy > 0.5  # faint noise leaves images readable to the clear model
    assert fitted.target_index_ == 0 and fitted.target_.key == KEYS[0]


def test_recognition_superimposes_the_target_mask(fitted, parts):
    _, validation, _ = parts
    predicted = fitted.predict(validation.x)
    assert predicted.shape == (len(validation),)
    assert (predicted == validation.y.numpy()).mean() == pytest.approx(fitted.scores_[0].encrypted_accuracy)


def test_examples_hold_clear_encrypted_and_reconstructed_images(fitted):
    assert set(fitted.examples_[0]) == {"clear", "encrypted", "average"}
    assert fitted.examples_[0]["clear"].shape == (3, 1, 8, 8)


def test_fitting_is_deterministic_by_seed(parts, fitted):
    again = _selector().fit(*parts)
    assert [s.as_row() for s in again.scores_] == [s.as_row() for s in fitted.scores_]


def test_no_candidate_meeting_the_rule_names_the_best(parts):
    with pytest.raises(SelectionError, match="best available is sign/sign_flip#0"):
        _selector(MaskRule("constrained", max_original_accuracy=0.0, require_qualified=True)).fit(*parts)


def test_non_finite_validation_pixels_are_rejected(parts):
    train, validation, public = parts
    x = validation.x.clone()
    x[0, 0, 0, 0] = math.nan
    with pytest.raises(DataError, match="non-finite"):
        _selector().fit(train, ArrayDataset(x, validation.y, validation.classes), public)


def test_public_images_of_another_shape_are_rejected(parts, make_images):
    train, validation, _ = parts
    public = ArrayDataset(make_images(20, (1, 28, 28)), validation.y[:20], validation.classes)
    with pytest.raises(DataError, match="do not match"):
        _selector().fit(train, validation, public)


def test_accuracies_on_new_images_match_the_validation_scores(fitted, parts):
    _, validation, _ = parts
    rows = fitted.accuracies(validation)
    assert [r["encrypted_accuracy"] for r in rows] == [s.encrypted_accuracy for s in fitted.scores_]
    assert [r["original_accuracy"] for r in rows] == [s.original_accuracy for s in fitted.scores_]


@pytest.mark.parametrize(("setting", "message"), [({"encrypted_training": "twice"}, "encrypted_training"),
                                                  ({"attacks": ("average", "oracle")}, "unknown attack")])
def test_bad_selector_settings_are_config_errors(parts, setting, message):
    with pytest.raises(ConfigError, match=message):
        EncryptionMaskSelector(KEYS, model="mlp", epochs=1, **setting).fit(*parts)


WEAK_AND_FAIR = [MaskKey("sign", 6, "sign_flip", index=0), MaskKey("noise", 7, "blend", index=1),
                 MaskKey("noise", 9, "multiply", index=2)]
ATTACK_RULE = MaskRule("constrained", max_original_accuracy=0.5, max_attack_ssim=None, max_attacker_accuracy=0.6,
                       max_linkage=None)  # the attacker cap alone


@pytest.fixture(scope="module")
def attacked(parts):
    return EncryptionMaskSelector(WEAK_AND_FAIR, ATTACK_RULE, model="mlp", original_models=("mlp", "cnn"), epochs=8,
                                  lr=3e-3, encrypted_training="per_mask", attacks=("invariant",), n_examples=2,
                                  ).fit(*parts)


def test_a_weak_candidate_is_rejected_because_of_the_attack(attacked):
    flip, blend, _ = attacked.scores_
    uncapped = select_mask(attacked.scores_, replace(ATTACK_RULE, max_attacker_accuracy=None))
    assert uncapped.qualified and uncapped.index == 0  # without the attack the sign flip wins
    assert flip.original_accuracy <= 0.5 and flip.encrypted_accuracy > blend.encrypted_accuracy
    assert flip.attacker_accuracy["abs_centred"] > 0.6  # |y - 0.5| reads it without the key
    assert attacked.qualified_ and attacked.target_index_ == 1 and attacked.warning_ is None


def test_original_accuracy_is_the_best_clear_model_on_clipped_ciphertexts(attacked, parts):
    _, validation, _ = parts
    multiply = attacked.scores_[2]
    ciphertexts = attacked.masks_[2].apply(validation.x)
    assert ciphertexts.min() < 0 and ciphertexts.max() > 1  # noise factors leave the pixel range
    assert [type(m[0]) for m in attacked.original_models_] == [torch.nn.Flatten, torch.nn.Conv2d]  # mlp, cnn
    clipped = [accuracy(m, ciphertexts.clamp(0, 1), validation.y) for m in attacked.original_models_]
    raw = [accuracy(m, ciphertexts, validation.y) for m in attacked.original_models_]
    assert clipped != raw  # the check below can tell clipped from raw ciphertexts
    assert list(multiply.original_accuracies.values()) == clipped
    assert multiply.original_accuracy == max(clipped)
    assert attacked.accuracies(validation)[2]["original_accuracy"] == max(clipped)


def test_no_qualifying_candidate_gives_the_least_bad_with_a_warning(parts):
    strict = _selector(MaskRule("constrained", max_original_accuracy=0.0)).fit(*parts)
    assert not strict.qualified_ and strict.target_index_ == 0
    assert strict.warning_ is not None and "best available is sign/sign_flip#0" in strict.warning_
