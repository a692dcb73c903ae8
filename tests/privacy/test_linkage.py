"""The linkage attack re-identifies weakly protected images and stays at chance on unrelated ones."""

from __future__ import annotations

import pytest
import torch

from fedfleet.data.datasets import load_dataset
from fedfleet.privacy.invariants import INVARIANTS
from fedfleet.privacy.linkage import linkage_rate
from fedfleet.privacy.masks import Mask
from tests.privacy.test_known_plaintext import fixed_keys


@pytest.fixture(scope="module")
def originals() -> torch.Tensor:
    return load_dataset("digits").test.x[:300]


def test_occluded_images_stay_linkable_outside_the_occluded_region(originals: torch.Tensor) -> None:
    region = torch.zeros(originals.shape[1:], dtype=torch.bool)
    region[:, 2:6, 2:6] = True  # the centre quarter of an 8x8 digit
    occluded = originals.masked_fill(region, 0.0)
    assert linkage_rate(occluded, originals, ignore=region) > 0.95
    assert linkage_rate(occluded, originals) > 30 / len(originals)  # even comparing every pixel: 30x chance


def test_sign_flip_per_image_keys_are_linked_through_the_invariant(originals: torch.Tensor) -> None:
    shape = tuple(originals.shape[1:])
    keys = fixed_keys("sign", "sign_flip", len(originals))
    protected = torch.cat([Mask.from_key(k, shape).apply(x[None]) for k, x in zip(keys, originals, strict=True)])
    assert linkage_rate(protected, originals) < 0.1  # raw pixels do not link
    assert linkage_rate(protected, originals, INVARIANTS["abs_centred"]) > 0.95


def test_unrelated_images_link_at_chance(originals: torch.Tensor) -> None:
    shuffled = originals[torch.randperm(len(originals), generator=torch.Generator().manual_seed(0))]
    assert linkage_rate(shuffled, originals) < 0.05
    with pytest.raises(ValueError, match="one shape"):
        linkage_rate(originals[:3], originals[:4])
