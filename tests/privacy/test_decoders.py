"""The convolutional decoder learns to undo a weak family across keys it never saw."""

import pytest
import torch

from fedfleet.privacy.attacks import InverseAttack
from fedfleet.privacy.decoders import DecoderAttack
from fedfleet.privacy.masks import Mask, MaskKey
from fedfleet.privacy.metrics import ssim

SHAPE = (1, 8, 8)


@pytest.fixture(scope="module")
def victims_and_public(digits):
    return digits.test.x[:200], digits.train.x[:1000]


@pytest.mark.parametrize("family", ["checkerboard", "sign"])
def test_the_decoder_beats_the_linear_inverse_on_a_weak_sign_flip_family(victims_and_public, family):
    victims, public = victims_and_public
    key = MaskKey(family, 5, "sign_flip")
    encrypted = Mask.from_key(key, SHAPE).apply(victims)
    decoder = DecoderAttack(key, epochs=20, exclude=[key.seed]).fit(public)
    linear = InverseAttack(key, "linear", exclude=[key.seed]).fit(public)
    decoded = float(ssim(decoder.reconstruct(encrypted), victims).mean())
    assert decoded > float(ssim(linear.reconstruct(encrypted), victims).mean()) + 0.1
    assert decoded > 0.4 and key.seed not in {k.seed for k in decoder.keys_}


def test_the_decoder_is_seeded_and_outputs_pixels(victims_and_public):
    victims, public = victims_and_public
    key = MaskKey("noise", 1, "add_clip")
    encrypted = Mask.from_key(key, SHAPE).apply(victims)
    first = DecoderAttack(key, epochs=1, random_state=3).fit(public[:200]).reconstruct(encrypted)
    second = DecoderAttack(key, epochs=1, random_state=3).fit(public[:200]).reconstruct(encrypted)
    assert torch.equal(first, second) and first.min() >= 0 and first.max() <= 1
    assert first.shape == victims.shape
