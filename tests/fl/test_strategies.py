import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.config import StrategyConfig
from fedfleet.errors import ConfigError
from fedfleet.fl.messages import ClientUpdate, LocalTrainingPlan
from fedfleet.fl.strategies import FedAvg, FedNova, FedProx, build_strategy, sample_weights
from fedfleet.fl.strategies.fednova import momentum_normaliser


def update(client_id, delta, num_samples=10, local_steps=1):
    return ClientUpdate(client_id, torch.as_tensor(delta, dtype=torch.float32), num_samples, local_steps, 0)


def test_fedavg_of_identical_updates_is_that_update():
    params = torch.tensor([1.0, -2.0, 3.0])
    delta = [0.5, 0.25, -1.0]
    updates = [update(i, delta, num_samples=n) for i, n in enumerate([3, 50, 7])]
    torch.testing.assert_close(FedAvg().aggregate(params, updates), params + torch.tensor(delta))


def test_fedavg_weights_proportional_to_samples():
    params = torch.zeros(2)
    updates = [update(0, [1.0, 0.0], num_samples=30), update(1, [0.0, 1.0], num_samples=10)]
    torch.testing.assert_close(FedAvg().aggregate(params, updates), torch.tensor([0.75, 0.25]))


def test_server_lr_scales_the_step():
    updates = [update(0, [2.0]), update(1, [4.0])]
    torch.testing.assert_close(FedAvg(server_lr=0.5).aggregate(torch.zeros(1), updates), torch.tensor([1.5]))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=30))
def test_sample_weights_nonnegative_and_sum_to_one(counts):
    weights = sample_weights([update(i, [0.0], num_samples=n) for i, n in enumerate(counts)])
    assert (weights >= 0).all()
    assert weights.sum() == pytest.approx(1.0)


def test_fedprox_sets_the_proximal_term():
    plan = FedProx(mu=0.3).configure_train(LocalTrainingPlan(), 1)
    assert plan.prox_mu == 0.3


def test_fednova_equals_fedavg_when_steps_are_equal():
    updates = [update(0, [1.0, 2.0], 10, 4), update(1, [3.0, -1.0], 30, 4)]
    params = torch.tensor([0.5, 0.5])
    torch.testing.assert_close(FedNova().aggregate(params, updates), FedAvg().aggregate(params, updates))


def test_fednova_normalises_by_local_steps():
    # Client 0 took 1 step of size 1; client 1 took 4 steps totalling 4. Per-step directions
    # are both 1, so the normalised average is 1 per step, times tau_eff = 0.5*1 + 0.5*4.
    updates = [update(0, [1.0], 10, 1), update(1, [4.0], 10, 4)]
    torch.testing.assert_close(FedNova().aggregate(torch.zeros(1), updates), torch.tensor([2.5]))
    torch.testing.assert_close(FedAvg().aggregate(torch.zeros(1), updates), torch.tensor([2.5]))
    skewed = [update(0, [1.0], 10, 1), update(1, [8.0], 10, 4)]  # client 1 steps twice as far
    torch.testing.assert_close(FedNova().aggregate(torch.zeros(1), skewed), torch.tensor([3.75]))


def test_momentum_normaliser_matches_series():
    rho, tau = 0.9, 7
    series = sum(sum(rho**j for j in range(k + 1)) for k in range(tau))
    assert momentum_normaliser(tau, rho) == pytest.approx(series)
    assert momentum_normaliser(tau, 0.0) == tau


def test_unknown_strategy_lists_choices():
    with pytest.raises(ConfigError, match="fedavg"):
        build_strategy(StrategyConfig(name="fedsomething"))


def test_weights_are_numpy():
    assert isinstance(sample_weights([update(0, [1.0])]), np.ndarray)
