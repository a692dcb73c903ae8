import pytest

from fedfleet.errors import ConfigError
from fedfleet.privacy.mask_rule import MaskRule, MaskScore, choose_mask, select_mask
from fedfleet.privacy.masks import MaskKey
from fedfleet.privacy.occlusion import OcclusionRegion
from fedfleet.privacy.occlusion_selection import OcclusionRule, OcclusionScore, choose_region
from fedfleet.privacy.selection import SelectionError, least_violating, pick_feasible


def _mask(seed, encrypted, original, attack=0.1):
    return MaskScore(MaskKey("sign", seed, "sign_flip", index=seed), encrypted, original, ciphertext_ssim=0.0,
                     attack_ssim={"average": attack}, attack_psnr={"average": 10.0})


HAND_BUILT = [
    _mask(0, encrypted=0.95, original=0.90),  # most accurate, but the clear model reads it too
    _mask(1, encrypted=0.80, original=0.10, attack=0.95),  # private to the clear model, easy to undo
    _mask(2, encrypted=0.85, original=0.20),  # the known best under the constraint
    _mask(3, encrypted=0.60, original=0.05),
]


def test_constrained_rule_picks_the_known_best():
    assert choose_mask(HAND_BUILT, MaskRule("constrained", max_original_accuracy=0.3)) == 2


def test_gap_rule_picks_the_largest_gap():
    assert choose_mask(HAND_BUILT, MaskRule("gap", max_attack_ssim=None)) == 1


def test_attack_ceiling_excludes_undoable_masks():
    assert choose_mask(HAND_BUILT, MaskRule("gap", max_attack_ssim=0.5)) == 2


def test_no_mask_meeting_the_rule_names_the_best_available():
    with pytest.raises(SelectionError, match=r"no mask meets the rule .* best available is sign/sign_flip#3"):
        choose_mask(HAND_BUILT, MaskRule("constrained", max_original_accuracy=0.01))


def _attacked(index, encrypted, original, ssim, attacker):
    return MaskScore(MaskKey("sign", index, "sign_flip", index=index), encrypted, original, ciphertext_ssim=0.0,
                     attack_ssim={"known_plaintext": ssim}, attack_psnr={"known_plaintext": 10.0},
                     attacker_accuracy={"ciphertext": 0.1, "abs_centred": attacker})


def test_the_default_rule_rejects_a_candidate_an_attack_reads():
    readable = _attacked(0, encrypted=0.95, original=0.1, ssim=0.2, attacker=0.9)  # best, but |y - 0.5| reads it
    recovered = _attacked(1, encrypted=0.93, original=0.1, ssim=0.95, attacker=0.2)  # one pair decrypts it
    private = _attacked(2, encrypted=0.80, original=0.1, ssim=0.2, attacker=0.2)
    assert choose_mask([readable, recovered, private], MaskRule()) == 2
    uncapped = MaskRule(max_attack_ssim=None, max_attacker_accuracy=None)
    assert choose_mask([readable, recovered, private], uncapped) == 0


def test_without_a_qualifying_candidate_the_least_bad_is_named():
    scores = [_attacked(0, 0.95, 0.1, ssim=0.2, attacker=0.9), _attacked(1, 0.90, 0.1, ssim=0.6, attacker=0.35),
              _attacked(2, 0.99, 0.1, ssim=0.95, attacker=0.2)]
    choice = select_mask(scores, MaskRule())
    assert not choice.qualified and choice.index == 1  # worst figure 0.1 above its cap, against 0.6 and 0.45
    assert "no mask meets the rule (original accuracy <= 0.3, attack SSIM <= 0.5, attacker accuracy <= 0.3)" \
        in choice.message
    assert "best available is sign/sign_flip#1" in choice.message and "attacker accuracy 0.350 by abs_centred" \
        in choice.message
    with pytest.raises(SelectionError, match="best available is sign/sign_flip#1"):
        choose_mask(scores, MaskRule())


def test_empty_mask_set_is_an_error():
    with pytest.raises(SelectionError, match="empty"):
        choose_mask([], MaskRule())


def _region(left, security, availability):
    region = OcclusionRegion("rect", 2, 2, ((0, left),), (8, 8))
    return OcclusionScore(region, restoration=security, saliency_covered=security, security=security,
                          availability=availability)


REGIONS = [_region(0, 0.9, 0.2), _region(2, 0.6, 0.75), _region(4, 0.5, 0.9), _region(6, 0.1, 0.99)]


def test_occlusion_constrained_rule_picks_most_secure_available_region():
    assert choose_region(REGIONS, OcclusionRule("constrained", min_availability=0.7)) == 1
    assert choose_region(REGIONS, OcclusionRule("constrained", min_availability=0.8)) == 2


def test_occlusion_weighted_rule_trades_security_for_availability():
    assert choose_region(REGIONS, OcclusionRule("weighted", security_weight=1.0)) == 0
    assert choose_region(REGIONS, OcclusionRule("weighted", security_weight=0.0)) == 3
    assert choose_region(REGIONS, OcclusionRule("weighted", security_weight=0.5)) == 2  # 0.7 beats 0.675


def test_no_region_meeting_the_floor_names_the_best_available():
    with pytest.raises(SelectionError, match=r"best available is rect 2x2 @ \(0,6\)"):
        choose_region(REGIONS, OcclusionRule("constrained", min_availability=0.999))


def test_pick_helpers_break_ties_by_order_and_violation():
    assert pick_feasible([1.0, 3.0, 3.0], [0.0, 0.0, 0.0]) == 1
    assert pick_feasible([1.0, 3.0], [0.1, 0.2]) is None
    assert least_violating([1.0, 5.0, 2.0], [0.3, 0.1, 0.1]) == 1


def test_unknown_rule_names_are_config_errors():
    with pytest.raises(ConfigError, match="mask rule"):
        choose_mask(HAND_BUILT, MaskRule("best"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="occlusion rule"):
        choose_region(REGIONS, OcclusionRule("best"))  # type: ignore[arg-type]
