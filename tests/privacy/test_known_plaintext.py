"""The known-plaintext attack recovers images under a reused mask and fails against per-image masks."""

from __future__ import annotations

import pytest
import torch

from fedfleet.privacy.known_plaintext import KnownPlaintextAttack
from fedfleet.privacy.masks import Mask, MaskKey
from fedfleet.privacy.metrics import ssim

SHAPE = (1, 8, 8)
CASES = [("sign", "sign_flip", 1), ("block", "multiply", 1), ("checkerboard", "blend", 1), ("noise", "blend", 1),
         ("sign", "multiply", 5), ("noise", "add_clip", 50), ("block", "add_clip", 50), ("sign", "sign_flip", 5)]

def fixed_keys(family: str, mode: str, count: int, first: int = 0) -> list[MaskKey]:
    """Deterministic keys (the attack, not the key source, is under test)."""
    return [MaskKey(family, first + i, mode) for i in range(count)]



def images(count: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(count, 1, 10, 10, generator=generator), 3, stride=1)
    return (0.05 + 0.9 * smooth).clamp(0, 1)  # strictly inside (0, 1): every pixel informs multiply


@pytest.mark.parametrize(("family", "mode", "pairs"), CASES)
def test_k_known_pairs_recover_other_images_under_the_same_mask(family: str, mode: str, pairs: int) -> None:
    key = MaskKey(family, 1234, mode)
    mask = Mask.from_key(key, SHAPE)
    known, targets = images(pairs, seed=1), images(20, seed=2)
    attack = KnownPlaintextAttack(mode, weight=key.weight).fit(known, mask.apply(known))
    recovered = attack.reconstruct(mask.apply(targets))
    score = ssim(recovered, targets).mean()
    if mode == "add_clip":  # clipping loses information: the attack recovers what the key holder can
        assert score >= ssim(mask.invert(mask.apply(targets)), targets).mean() - 0.01
    else:
        assert score > 0.999
        assert ssim(mask.apply(targets), targets).mean() < score - 0.3  # the ciphertexts themselves are not close


def test_the_mode_free_affine_fit_recovers_sign_and_blend_masks_from_five_pairs() -> None:
    for family, mode in [("sign", "sign_flip"), ("noise", "blend"), ("block", "multiply")]:
        key = MaskKey(family, 1234, mode)
        mask = Mask.from_key(key, SHAPE)
        known, targets = images(5, seed=3), images(20, seed=4)
        attack = KnownPlaintextAttack("affine").fit(known, mask.apply(known))
        assert ssim(attack.reconstruct(mask.apply(targets)), targets).mean() > 0.99, mode


def test_per_image_masks_defeat_the_known_pairs() -> None:
    known, targets = images(5, seed=5), images(20, seed=6)
    pair_masks = [Mask.from_key(k, SHAPE) for k in fixed_keys("sign", "sign_flip", 5)]
    target_masks = [Mask.from_key(k, SHAPE) for k in fixed_keys("sign", "sign_flip", 20, first=100)]
    encrypted_pairs = torch.cat([m.apply(x[None]) for m, x in zip(pair_masks, known, strict=True)])
    ciphertexts = torch.cat([m.apply(x[None]) for m, x in zip(target_masks, targets, strict=True)])
    attack = KnownPlaintextAttack("sign_flip").fit(known, encrypted_pairs)
    assert ssim(attack.reconstruct(ciphertexts), targets).mean() < 0.5


def test_bad_pairs_are_refused() -> None:
    with pytest.raises(ValueError, match="one shape"):
        KnownPlaintextAttack("blend").fit(torch.rand(2, 1, 8, 8), torch.rand(3, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 2 pairs"):
        KnownPlaintextAttack("affine").fit(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="unknown mode"):
        KnownPlaintextAttack("xor")
