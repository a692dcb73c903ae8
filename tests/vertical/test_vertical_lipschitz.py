"""The certified bound: exact layer norms, no pair of embeddings beats it, the search finds it when attained."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.vertical.certify import empirical_lipschitz, pair_ratios
from fedfleet.vertical.lipschitz import MaxMin, SpectralLinear, TopModel, spectral_norm
from fedfleet.vertical.model import SplitModel
from fedfleet.vertical.trainer import build_split_model


def _model(lipschitz: float | None, passives: int = 1) -> SplitModel:
    return build_split_model([6] * (passives + 1), 5, seed=1, embedding_dim=4, bottom_hidden=8,
                             interaction_dim=8, top_hidden=6, top_depth=2, lipschitz=lipschitz)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_maxmin_preserves_norms_and_is_1_lipschitz(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    a, b = torch.randn(3, 10, generator=generator), torch.randn(3, 10, generator=generator)
    out_a, out_b = MaxMin()(a), MaxMin()(b)
    torch.testing.assert_close(out_a.norm(dim=1), a.norm(dim=1))
    assert ((out_a - out_b).norm(dim=1) <= (a - b).norm(dim=1) + 1e-6).all()


def test_split_model_needs_a_passive_party() -> None:
    with pytest.raises(ValueError, match="at least one passive party"):
        SplitModel([6], 3)


def test_maxmin_rejects_odd_width() -> None:
    with pytest.raises(ValueError, match="even"):
        MaxMin()(torch.zeros(2, 3))


def test_spectral_linear_has_norm_one_after_training_steps() -> None:
    layer = SpectralLinear(7, 5)
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    for _ in range(3):
        optimizer.zero_grad()
        layer(torch.randn(4, 7)).pow(2).sum().backward()
        optimizer.step()
    assert spectral_norm(layer) == pytest.approx(1.0, abs=1e-6)


def test_top_bound_is_l_for_the_lipschitz_top() -> None:
    assert TopModel(8, 6, 2, 3, lipschitz=2.5).lipschitz_bound() == pytest.approx(2.5, rel=1e-6)


def test_interaction_passive_path_is_bounded_only_when_constrained() -> None:
    constrained, plain = _model(3.0), _model(None)
    assert constrained.interaction.passive_lipschitz_bound() == pytest.approx(1.0, abs=1e-6)
    with torch.no_grad():
        plain.interaction.passive.weight.mul_(50)
    assert plain.interaction.passive_lipschitz_bound() > 1.0
    assert constrained.passive_lipschitz_bound() == pytest.approx(3.0, rel=1e-6)


@pytest.mark.parametrize("passives", [1, 3])
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), log_scale=st.floats(-3, 3))
def test_bound_holds_on_random_pairs(passives: int, seed: int, log_scale: float) -> None:
    model = copy.deepcopy(_model(3.0, passives)).double()
    with torch.no_grad():  # any raw weights: the normalisation must keep the bound
        for parameter in model.parameters():
            parameter.mul_(10 ** (log_scale / 2))
    generator = torch.Generator().manual_seed(seed)
    z_active = torch.randn(16, 4, generator=generator, dtype=torch.float64)
    z = torch.randn(16, 4 * passives, generator=generator, dtype=torch.float64) * 10**log_scale
    z_other = z + torch.randn(z.shape, generator=generator, dtype=torch.float64) * 10 ** (log_scale - 1)
    with torch.no_grad():
        ratios = pair_ratios(model, z_active, z, z_other, [4] * passives)
    assert float(ratios.max()) <= model.passive_lipschitz_bound() * (1 + 1e-9)


def test_bound_holds_on_adversarial_pairs() -> None:
    model = _model(3.0)
    generator = torch.Generator().manual_seed(0)
    z_active, z_passive = torch.randn(64, 4, generator=generator), torch.randn(64, 4, generator=generator)
    check = empirical_lipschitz(model, z_active, [z_passive], steps=100)
    assert check["bound_holds"] == 1.0
    assert check["max_ratio_adversarial"] <= check["certified_bound"]
    assert check["max_ratio_adversarial"] >= check["max_ratio_random"]


def _orthonormal(rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(max(rows, cols), max(rows, cols), generator=generator))
    return q[:rows, :cols]


def test_adversarial_search_finds_the_bound_where_it_is_attained() -> None:
    """P orthogonal and a one-layer top whose weight has singular values (1, 0.1, ...): the
    Jacobian L * W * (MaxMin permutation) * P has spectral norm exactly L on every linear
    piece, so the bound is attained, but only along one direction (random pairs miss it)."""
    dim, classes, lipschitz = 16, 5, 3.0
    model = build_split_model([6, 6], classes, seed=1, embedding_dim=dim, bottom_hidden=8,
                              interaction_dim=dim, top_hidden=2, top_depth=0, lipschitz=lipschitz)
    generator = torch.Generator().manual_seed(0)
    singular = torch.full((classes,), 0.1)
    singular[0] = 1.0
    with torch.no_grad():
        model.interaction.passive.raw.weight.copy_(_orthonormal(dim, dim, generator))
        model.top.layers[0].raw.weight.copy_(
            _orthonormal(classes, classes, generator) @ torch.diag(singular) @ _orthonormal(classes, dim, generator))
    z_active, z_passive = torch.randn(64, dim, generator=generator), torch.randn(64, dim, generator=generator)
    check = empirical_lipschitz(model, z_active, [z_passive], steps=100)
    assert check["certified_bound"] == pytest.approx(lipschitz, rel=1e-6)
    assert check["bound_holds"] == 1.0
    assert check["max_ratio_random"] < 0.8 * lipschitz
    assert check["max_ratio_adversarial"] >= 0.99 * lipschitz


def test_check_flags_a_model_exceeding_the_stated_bound() -> None:
    plain = _model(None)
    with torch.no_grad():
        plain.top.layers[-1].weight.mul_(1e3)
    generator = torch.Generator().manual_seed(0)
    z_active, z_passive = torch.randn(64, 4, generator=generator), torch.randn(64, 4, generator=generator)
    check = empirical_lipschitz(plain, z_active, [z_passive], steps=20)
    assert check["max_ratio_adversarial"] > 3.0  # would break a claimed bound of L = 3
    assert check["bound_holds"] == 1.0  # its own (product-of-norms) bound is still valid
