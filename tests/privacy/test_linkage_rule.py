"""Linkage in the mask rule: the suite measures it per view, the rule caps it, the least bad accounts for it."""

import pytest

from fedfleet.privacy.mask_rule import MaskRule, MaskScore, choose_mask, select_mask
from fedfleet.privacy.masks import Mask, MaskKey
from fedfleet.privacy.suite import AttackSuite


def _score(index: int, encrypted: float, linkage: float) -> MaskScore:
    return MaskScore(MaskKey("noise", index, "blend", index=index), encrypted, 0.1, ciphertext_ssim=0.1,
                     attack_ssim={"average": 0.2}, attack_psnr={"average": 10.0},
                     attacker_accuracy={"ciphertext": 0.1}, linkage={"ciphertext": linkage, "abs": linkage / 2})


def test_the_default_rule_rejects_a_linkable_candidate():
    linkable, unlinkable = _score(0, 0.95, linkage=0.6), _score(1, 0.80, linkage=0.01)
    assert MaskRule().max_linkage == 0.05
    assert choose_mask([linkable, unlinkable], MaskRule()) == 1
    assert choose_mask([linkable, unlinkable], MaskRule(max_linkage=None)) == 0


def test_the_least_bad_counts_linkage_and_the_message_names_it():
    scores = [_score(0, 0.95, linkage=0.9), _score(1, 0.80, linkage=0.2)]
    choice = select_mask(scores, MaskRule())
    assert not choice.qualified and choice.index == 1
    assert "linkage <= 0.05)" in choice.message and "linkage 0.200 by ciphertext" in choice.message
    row = scores[1].as_row()
    assert row["linkage_ciphertext"] == 0.2 and row["linkage_abs"] == 0.1 and row["worst_linkage"] == 0.2


def test_without_linkage_figures_the_cap_is_neither_applied_nor_shown():
    bare = MaskScore(MaskKey("noise", 0, "blend"), 0.9, 0.1, ciphertext_ssim=0.1)
    assert choose_mask([bare], MaskRule()) == 0
    assert "linkage" not in select_mask([bare], MaskRule(max_original_accuracy=0.0)).message


@pytest.fixture(scope="module")
def public(digits):
    return digits.train.x[:300], digits.train.y[:300]


def test_the_suite_links_sign_flips_through_the_invariant_and_reconstructions(digits, public):
    victims, labels = digits.test.x[:150], digits.test.y[:150]
    key = MaskKey("sign", 21, "sign_flip")
    figures = AttackSuite(("distribution",)).fit(*public, [key]).evaluate(Mask.from_key(key, (1, 8, 8)), victims,
                                                                          labels)
    assert set(figures.linkage) == {"ciphertext", "abs_centred", "abs", "distribution"}
    assert figures.linkage["ciphertext"] < 0.1  # raw pixels do not link
    assert figures.linkage["abs_centred"] > 0.9 and figures.linkage["distribution"] > 0.9


def test_when_every_candidate_links_the_next_worst_figure_decides_the_least_bad():
    leaky = MaskScore(MaskKey("sign", 0, "multiply", index=0), 0.9, 0.1, ciphertext_ssim=0.1,
                      attack_ssim={"distribution": 0.99}, attack_psnr={"distribution": 30.0},
                      attacker_accuracy={"ciphertext": 0.9}, linkage={"ciphertext": 1.0})
    fairer = MaskScore(MaskKey("noise", 1, "add_clip", index=1), 0.7, 0.1, ciphertext_ssim=0.3,
                       attack_ssim={"distribution": 0.6}, attack_psnr={"distribution": 15.0},
                       attacker_accuracy={"ciphertext": 0.5}, linkage={"ciphertext": 1.0})
    choice = select_mask([leaky, fairer], MaskRule())
    assert not choice.qualified and choice.index == 1  # both 0.95 over the linkage cap; 0.49 against 0.6 next
