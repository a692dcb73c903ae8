"""Ciphertext-only distribution matching breaks a reused mask and fails against per-image keys."""

import pytest
import torch

from fedfleet.privacy.attacks import AveragingAttack
from fedfleet.privacy.distribution import DistributionMatchingAttack
from fedfleet.privacy.masks import Mask, MaskKey
from fedfleet.privacy.metrics import ssim
from tests.privacy.test_known_plaintext import fixed_keys

SHAPE = (1, 8, 8)


@pytest.fixture(scope="module")
def victims_and_public(digits):
    return digits.test.x[:200], digits.train.x[:300]


def _score(mode: str, key: MaskKey, encrypted: torch.Tensor, victims: torch.Tensor, public: torch.Tensor) -> float:
    attack = DistributionMatchingAttack(mode, key.strength, key.weight).fit(encrypted, public)
    return float(ssim(attack.reconstruct(encrypted), victims).mean())


@pytest.mark.parametrize(("family", "mode"), [("sign", "sign_flip"), ("noise", "multiply"), ("noise", "blend"),
                                              ("noise", "add_clip")])
def test_a_shared_mask_falls_to_ciphertexts_alone_and_per_image_keys_defeat_it(victims_and_public, family, mode):
    victims, public = victims_and_public
    key = MaskKey(family, 5, mode)
    shared = _score(mode, key, Mask.from_key(key, SHAPE).apply(victims), victims, public)
    fresh = torch.cat([Mask.from_key(k, SHAPE).apply(x[None])
                       for k, x in zip(fixed_keys(family, mode, len(victims), first=100), victims, strict=True)])
    per_image = _score(mode, key, fresh, victims, public)
    looking = float(ssim(fresh.clamp(0, 1), victims).mean())
    assert shared > 0.9
    assert per_image < looking + 0.15 < shared  # no better than looking at the ciphertexts, plus a margin


def test_the_sign_pattern_is_recovered_where_the_pixel_distribution_is_asymmetric(victims_and_public):
    victims, public = victims_and_public
    mask = Mask.from_key(MaskKey("sign", 4, "sign_flip"), SHAPE)
    attack = DistributionMatchingAttack("sign_flip").fit(mask.apply(victims), public)
    informative = (public.mean(dim=0) - 0.5).abs() > 0.05
    assert torch.equal(attack.pattern_[informative].float(), mask.pattern[informative])


def test_quantiles_see_through_clipping_where_the_mean_does_not(victims_and_public):
    victims, public = victims_and_public
    key = MaskKey("noise", 5, "add_clip")
    encrypted = Mask.from_key(key, SHAPE).apply(victims)
    averaging = AveragingAttack("add_clip", key.strength).fit(encrypted, public).reconstruct(encrypted)
    assert _score("add_clip", key, encrypted, victims, public) > float(ssim(averaging, victims).mean()) + 0.03


def test_bad_input_is_refused(victims_and_public):
    victims, public = victims_and_public
    with pytest.raises(ValueError, match="unknown mode"):
        DistributionMatchingAttack("xor")
    with pytest.raises(ValueError, match="at least 2 ciphertexts"):
        DistributionMatchingAttack("blend").fit(victims[:1], public)
