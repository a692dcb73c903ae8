import pytest
import torch

from fedfleet.privacy import attacks
from fedfleet.privacy.attacks import AveragingAttack, InverseAttack, run_attack
from fedfleet.privacy.config import MaskJobConfig, load_job_config
from fedfleet.privacy.jobs import run_mask_job
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


def test_inverse_attack_ignores_the_template_seed(victim_and_public):
    _, public = victim_and_public
    attack = InverseAttack(MaskKey("sign", 123, "sign_flip"), "linear", n_keys=4, random_state=0).fit(public)
    same = InverseAttack(MaskKey("sign", 999, "sign_flip"), "linear", n_keys=4, random_state=0).fit(public)
    assert torch.equal(attack.weights_, same.weights_)


def test_inverse_attack_excludes_its_targets_seed_even_when_its_stream_draws_it(victim_and_public):
    _, public = victim_and_public
    probe = InverseAttack(MaskKey("noise", 1, "add_clip"), "linear", n_keys=4, random_state=5)
    first_drawn = probe.draw_keys()[0].seed  # the seed this attacker's stream draws first
    attack = InverseAttack(MaskKey("noise", first_drawn, "add_clip"), "linear", n_keys=4, random_state=5).fit(public)
    assert first_drawn not in {key.seed for key in attack.keys_}
    assert len({key.seed for key in attack.keys_}) == 4


# Every default candidate family, so the job draws 11 candidate keys as in the benchmark.
LEAK_JOB = {"data": {"dataset": "digits", "train_size": 100, "test_size": 20, "holdout_size": 0,
                     "public_size": 60},
            "model": {"name": "mlp", "epochs": 1}, "original_models": ["mlp", "mlp"], "rule": {"name": "gap"},
            "attacks": {"kinds": ["linear"]}, "examples": 2}


def test_the_attacker_never_holds_a_candidate_key_of_the_job(monkeypatch):
    # The real path: run_mask_job draws the candidates from the job seed and the selector runs
    # InverseAttack with the same seed. Both used to read default_rng(seed), so the attacker's
    # 8 keys contained candidate keys for every seed from 0 to 19 (linear SSIM 0.79 vs ~0.45).
    drawn: list[set[int]] = []
    real_expand_keys = attacks.expand_keys

    def spy(*args, **kwargs):
        keys = real_expand_keys(*args, **kwargs)
        drawn.append({key.seed for key in keys})
        return keys

    monkeypatch.setattr(attacks, "expand_keys", spy)
    for seed in range(20):
        drawn.clear()
        config = load_job_config(MaskJobConfig, LEAK_JOB, [f"seed={seed}"])
        result = run_mask_job(config)
        victims = {score.key.seed for score in result.scores}
        assert len(victims) == 11 and len(drawn) == 6  # one linear attacker per family of the 6 in the set
        assert all(len(keys) == config.attacks.keys for keys in drawn)
        leaked = set().union(*drawn) & victims
        assert not leaked, f"seed {seed}: the attacker drew candidate seeds {sorted(leaked)}"


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
