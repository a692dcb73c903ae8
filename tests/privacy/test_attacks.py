import pytest
import torch

from fedfleet.privacy.attacks import AveragingAttack, InverseAttack, run_attack
from fedfleet.privacy.masks import Mask, MaskKey
from fedfleet.privacy.metrics import ssim


@pytest.fixture(scope="module")
def victim_and_public(digits):
    return digits.test.x[:200], digits.train.x[:300]


@pytest.mark.parametrize(("family", "mode"), [("sign", "sign_flip"), ("block", "sign_flip"), ("mix", "blend"),
                                              ("sign", "multiply")])
def test_averaging_breaks_a_fixed_mask(victim_and_public, family, mode):
    victim, public = victim_and_public
    mask = Mask.from_key(MaskKey(family, 11, mode), (1, 8, 8), public)
    outcome = run_attack("average", mask, victim, public)
    looking = float(ssim(mask.apply(victim).clamp(0, 1), victim).mean())
    assert outcome.ssim > 0.9 > looking


def test_averaging_recovers_the_sign_pattern_where_the_mean_image_is_informative(victim_and_public):
    victim, public = victim_and_public
    mask = Mask.from_key(MaskKey("sign", 4, "sign_flip"), (1, 8, 8))
    attack = AveragingAttack("sign_flip").fit(mask.apply(victim), public)
    informative = (public.mean(dim=0) - 0.5).abs() > 0.05
    assert torch.equal(attack.pattern_[informative], mask.pattern[informative])


def test_linear_inverse_recovers_additive_noise_but_not_sign_flips(victim_and_public):
    victim, public = victim_and_public
    noise = Mask.from_key(MaskKey("noise", 2, "add_clip", strength=0.2), (1, 8, 8))
    flips = Mask.from_key(MaskKey("sign", 2, "sign_flip"), (1, 8, 8))
    assert run_attack("linear", noise, victim, public, n_keys=8).ssim > 0.7
    assert run_attack("linear", flips, victim, public, n_keys=8).ssim < 0.5


def test_inverse_attack_never_uses_the_victims_seed(victim_and_public):
    _, public = victim_and_public
    attack = InverseAttack(MaskKey("sign", 123, "sign_flip"), "linear", n_keys=4, random_state=0).fit(public)
    same = InverseAttack(MaskKey("sign", 999, "sign_flip"), "linear", n_keys=4, random_state=0).fit(public)
    assert torch.equal(attack.weights_, same.weights_)


def test_network_attack_is_seeded_and_outputs_pixels(victim_and_public):
    victim, public = victim_and_public
    mask = Mask.from_key(MaskKey("noise", 1, "add_clip"), (1, 8, 8))
    first = run_attack("network", mask, victim, public, hidden=32, epochs=1, random_state=3)
    second = run_attack("network", mask, victim, public, hidden=32, epochs=1, random_state=3)
    assert torch.equal(first.reconstruction, second.reconstruction)
    assert first.reconstruction.min() >= 0 and first.reconstruction.max() <= 1


def test_unknown_attack_is_rejected(victim_and_public):
    victim, public = victim_and_public
    with pytest.raises(ValueError, match="unknown attack"):
        run_attack("oracle", Mask.from_key(MaskKey("sign", 1, "sign_flip"), (1, 8, 8)), victim, public)
