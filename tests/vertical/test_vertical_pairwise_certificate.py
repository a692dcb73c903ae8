"""The per-class-pair certificate: tighter than sqrt(2)·L, and never overturned by an attack."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.vertical.attacks import pgd
from fedfleet.vertical.certify import certified_mask, pairwise_certified_mask
from fedfleet.vertical.model import SplitModel


def split_model(seed: int, classes: int = 5, lipschitz: float | None = 1.0) -> SplitModel:
    torch.manual_seed(seed)
    return SplitModel([4, 6], classes, embedding_dim=8, bottom_hidden=16, interaction_dim=8, top_hidden=8,
                      lipschitz=lipschitz).double().eval()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), lipschitz=st.sampled_from([0.5, 1.0, 3.0, None]))
def test_pair_bounds_are_never_looser_than_the_global_bound(seed: int, lipschitz: float | None) -> None:
    model = split_model(seed, lipschitz=lipschitz)
    pairs = model.passive_pair_bounds()
    assert torch.all(pairs.diagonal() == 0)
    assert torch.all(pairs <= math.sqrt(2) * model.passive_lipschitz_bound() * (1 + 1e-9))


def test_pair_bounds_bound_every_observed_logit_difference() -> None:
    model = split_model(1)
    pairs = model.passive_pair_bounds()
    generator = torch.Generator().manual_seed(0)
    z_active = torch.randn(200, 8, generator=generator, dtype=torch.float64)
    z, z_other = (torch.randn(200, 8, generator=generator, dtype=torch.float64) for _ in range(2))
    with torch.no_grad():
        change = model.head(z_active, [z]) - model.head(z_active, [z_other])
    distance = (z - z_other).norm(dim=1)
    for i in range(5):
        for j in range(5):
            observed = ((change[:, i] - change[:, j]).abs() / distance).max()
            assert observed <= pairs[i, j] + 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pgd_never_flips_a_pairwise_certified_sample(seed: int) -> None:
    model = split_model(seed)
    generator = torch.Generator().manual_seed(seed)
    xs = [torch.randn(300, 4, generator=generator, dtype=torch.float64),
          torch.randn(300, 6, generator=generator, dtype=torch.float64)]
    with torch.no_grad():
        z_active, z_passive = model.embed(xs)
        logits = model.head(z_active, [z_passive])
    y = logits.argmax(dim=1)  # the model's own labels: every sample starts correct
    pairs = model.passive_pair_bounds()
    margins = logits.gather(1, y[:, None]) - logits
    own_radius = (margins / pairs[y]).masked_fill(torch.nn.functional.one_hot(y, 5).bool(), torch.inf).amin(dim=1)
    radius = float(own_radius.median())  # about half the samples certified
    certified = pairwise_certified_mask(logits, y, pairs, radius)
    assert certified.sum() >= certified_mask(logits, y, model.passive_lipschitz_bound(), radius).sum()
    assert 0 < certified.sum() < len(y)
    attacked = pgd(model, z_active, [z_passive], y, 1, radius, steps=100, generator=generator)
    with torch.no_grad():
        flipped = model.head(z_active, [attacked]).argmax(dim=1) != y
    assert not torch.any(flipped & certified)
    stronger = pgd(model, z_active, [z_passive], y, 1, 20 * radius, steps=100, generator=generator)
    with torch.no_grad():  # the attack itself works: at a larger radius it flips predictions
        assert torch.any(model.head(z_active, [stronger]).argmax(dim=1) != y)


def three_party_model(seed: int) -> SplitModel:
    torch.manual_seed(seed)
    return SplitModel([4, 6, 5], 5, embedding_dim=8, bottom_hidden=16, interaction_dim=8, top_hidden=8,
                      lipschitz=1.0).double().eval()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_per_party_bounds_are_never_looser_than_the_joint_one(seed: int) -> None:
    model = three_party_model(seed)
    joint = model.passive_pair_bounds()
    for party in (1, 2):
        assert torch.all(model.party_pair_bounds(party) <= joint * (1 + 1e-9))
    one_passive = split_model(seed)  # one passive party: its own bound is the joint one
    assert torch.allclose(one_passive.party_pair_bounds(1), one_passive.passive_pair_bounds(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("party", [1, 2])
def test_a_party_bound_holds_when_only_that_party_moves(party: int) -> None:
    model = three_party_model(3)
    bounds = model.party_pair_bounds(party)
    assert float(bounds.max()) < float(model.passive_pair_bounds().max())  # strictly tighter here
    generator = torch.Generator().manual_seed(party)
    z_active = torch.randn(300, 8, generator=generator, dtype=torch.float64)
    others = [torch.randn(300, 8, generator=generator, dtype=torch.float64) for _ in range(2)]
    moved = list(others)
    moved[party - 1] = others[party - 1] + torch.randn(300, 8, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        change = model.head(z_active, others) - model.head(z_active, moved)
    distance = (others[party - 1] - moved[party - 1]).norm(dim=1)
    for i in range(5):
        for j in range(5):
            assert ((change[:, i] - change[:, j]).abs() / distance).max() <= bounds[i, j] + 1e-9
