"""The key-free invariant attack classifies sign-flip and ±1-multiply ciphertexts without any key."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from fedfleet.data.datasets import load_dataset
from fedfleet.privacy.invariants import InvariantClassifierAttack
from fedfleet.privacy.masks import Mask
from tests.privacy.test_known_plaintext import fixed_keys


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    split = load_dataset("digits")
    return split.train.x, split.train.y, split.test.x, split.test.y


@pytest.mark.parametrize(("family", "mode", "invariant"), [("sign", "sign_flip", "abs_centred"),
                                                           ("block", "sign_flip", "abs_centred"),
                                                           ("sign", "multiply", "abs")])
def test_the_invariant_attack_reads_ciphertexts_of_every_key(digits, family, mode, invariant) -> None:  # type: ignore[no-untyped-def]
    public, public_labels, private, labels = digits
    shape = tuple(private.shape[1:])
    keys = fixed_keys(family, mode, len(private))  # a fresh key per image: no key is shared
    ciphertexts = torch.cat([Mask.from_key(k, shape).apply(x[None]) for k, x in zip(keys, private, strict=True)])
    clear_model = LogisticRegression(max_iter=2000).fit(public.flatten(1).numpy(), public_labels.numpy())
    naive = float((clear_model.predict(ciphertexts.flatten(1).numpy()) == labels.numpy()).mean())
    attack = InvariantClassifierAttack(invariant).fit(public, public_labels)
    assert attack.accuracy(ciphertexts, labels) > 0.85
    assert naive < 0.5  # a clear-image model alone is fooled: the attack, not the data, does the work


def test_an_invariant_that_does_not_hold_for_the_mode_fails() -> None:
    split = load_dataset("digits")
    shape = tuple(split.test.x.shape[1:])
    keys = fixed_keys("noise", "blend", len(split.test.x))
    ciphertexts = torch.cat([Mask.from_key(k, shape).apply(x[None]) for k, x in zip(keys, split.test.x, strict=True)])
    attack = InvariantClassifierAttack("abs_centred").fit(split.train.x, split.train.y)
    assert attack.accuracy(ciphertexts, split.test.y) < 0.5
    assert np.unique(attack.predict(split.test.x[:50])).size > 1
    with pytest.raises(ValueError, match="unknown invariant"):
        InvariantClassifierAttack("square")
