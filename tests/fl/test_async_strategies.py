"""The arithmetic of FedAsync, FedBuff and FedASMU, tested alone."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fedfleet.fl.messages import ClientUpdate
from fedfleet.fl.strategies import Arrival, FedASMU, FedAsync, FedBuff, FederationInfo
from fedfleet.fl.strategies.fedasmu import mixing_weight, refresh_weight
from fedfleet.fl.strategies.fedasync import staleness_factor


def arrival(delta, client=0, base_version=0, version=0, base=None):
    delta = torch.tensor(delta, dtype=torch.float32)
    update = ClientUpdate(client, delta, 10, 1, base_version)
    return Arrival(update, torch.zeros_like(delta) if base is None else base, version)


def test_staleness_functions():
    assert staleness_factor(5, "constant", 0.5, 4) == 1.0
    assert staleness_factor(3, "polynomial", 0.5, 4) == pytest.approx(4**-0.5)
    assert staleness_factor(4, "hinge", 2.0, 4) == 1.0
    assert staleness_factor(6, "hinge", 2.0, 4) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="future version"):
        staleness_factor(-1, "constant", 0.5, 4)


def test_fedasync_mixes_with_the_discounted_weight():
    strategy = FedAsync(alpha=0.5, staleness="polynomial", a=1.0)
    out = strategy.receive(torch.tensor([2.0]), arrival([4.0], base_version=1, version=4))
    alpha = 0.5 / 4  # (t - o + 1)^-1 with t - o = 3
    torch.testing.assert_close(out, torch.tensor([(1 - alpha) * 2.0 + alpha * 4.0]))


def test_fedbuff_steps_every_k_arrivals_by_the_mean():
    strategy = FedBuff(buffer_size=3, server_lr=2.0)
    w = torch.tensor([1.0])
    assert strategy.receive(w, arrival([3.0])) is None
    assert strategy.receive(w, arrival([6.0])) is None
    state = strategy.state_dict()
    restored = FedBuff(buffer_size=3, server_lr=2.0)
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.receive(w, arrival([0.0])), torch.tensor([1.0 + 2.0 * 3.0]))
    assert strategy.receive(w, arrival([0.0])) is not None and strategy.count == 0


@given(lam=st.floats(1e-3, 1e6), sigma=st.floats(0, 20), iota=st.floats(0, 1e6), version=st.integers(0, 10**6),
       staleness=st.integers(0, 10**4), mu=st.floats(1e-3, 1e3))
def test_fedasmu_alpha_stays_strictly_between_zero_and_one(lam, sigma, iota, version, staleness, mu):
    alpha, gradient = mixing_weight(lam, sigma, iota, version, staleness, mu)
    assert 0 < alpha < 1 and np.isfinite(gradient).all()


def test_fedasmu_gradient_matches_finite_differences():
    theta, eps = np.array([0.8, 0.7, 0.05]), 1e-6
    _, gradient = mixing_weight(*theta, version=9, staleness=3, mu=2.0)
    for i in range(3):
        up, down = theta.copy(), theta.copy()
        up[i] += eps
        down[i] -= eps
        numeric = (mixing_weight(*up, 9, 3, 2.0)[0] - mixing_weight(*down, 9, 3, 2.0)[0]) / (2 * eps)
        assert gradient[i] == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_fedasmu_learns_larger_alpha_when_the_next_update_agrees():
    strategy = FedASMU(mix_scale=1.0, meta_lr=0.5)
    strategy.setup(FederationInfo(np.array([10, 10]), np.ones((2, 2))))
    before = strategy.weight(0, 1, 0)[0]
    strategy.receive(torch.zeros(2), arrival([1.0, 0.0], client=0))
    strategy.receive(torch.zeros(2), arrival([1.0, 0.1], client=1, version=1))  # points the same way
    assert strategy.weight(0, 1, 0)[0] > before
    strategy.receive(torch.zeros(2), arrival([-1.0, 0.0], client=0, version=2))  # reverses client 1's step
    assert strategy.theta[1, 0] < 1.0 and (strategy.theta >= 0).all()


def test_refresh_weight_is_bounded_and_zero_without_news():
    assert refresh_weight(0, 0.5) == 0.0
    assert all(0 < refresh_weight(g, 0.5) < 0.5 for g in range(1, 1000))
    assert math.isclose(refresh_weight(1, 0.5), 0.25)
