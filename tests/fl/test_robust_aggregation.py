"""Robust aggregation rules: properties of the pure functions, the strategy wrapper and its config."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.config import AggregatorConfig, load_config
from fedfleet.errors import ConfigError
from fedfleet.fl.messages import ClientUpdate
from fedfleet.fl.strategies import FedAvg, FedNova, Strategy, with_aggregator
from fedfleet.fl.strategies.async_base import Arrival, AsyncStrategy
from fedfleet.fl.strategies.fednova import momentum_normaliser
from fedfleet.fl.strategies.robust import (
    ClippedArrivals,
    RobustAggregation,
    clip_factors,
    coordinate_median,
    krum_scores,
    krum_select,
    max_byzantine,
    trimmed_mean,
)
from fedfleet.fl.validation import lower_median

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


def vectors(rows, dim):
    return st.lists(st.lists(finite, min_size=dim, max_size=dim), min_size=rows, max_size=rows).map(
        lambda values: torch.tensor(values, dtype=torch.float32))


def update(client_id, delta, num_samples=10, local_steps=1):
    return ClientUpdate(client_id, torch.as_tensor(delta, dtype=torch.float32), num_samples, local_steps, 0)


@settings(max_examples=50, deadline=None)
@given(st.lists(finite, min_size=1, max_size=6), st.integers(1, 9), st.floats(0, 0.49))
def test_median_and_trimmed_mean_of_identical_vectors_is_that_vector(vector, n, trim):
    stacked = torch.tensor([vector] * n)
    assert torch.equal(coordinate_median(stacked), stacked[0])
    torch.testing.assert_close(trimmed_mean(stacked, trim), stacked[0])


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(vectors(n, 3), st.permutations(range(n)))), st.floats(0, 0.49))
def test_rules_are_permutation_invariant(case, trim):
    stacked, order = case
    shuffled = stacked[list(order)]
    assert torch.equal(coordinate_median(shuffled), coordinate_median(stacked))
    torch.testing.assert_close(trimmed_mean(shuffled, trim), trimmed_mean(stacked, trim))
    torch.testing.assert_close(krum_scores(shuffled, 1), krum_scores(stacked, 1)[list(order)])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6).flatmap(lambda f: st.tuples(
    vectors(f + 1 + f, 3),  # n = 2f + 1 rows: f + 1 honest, f attackers (f < n / 2)
    st.just(f),
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=3 * f, max_size=3 * f))))
def test_median_stays_within_the_honest_range_whatever_a_minority_sends(case):
    honest_and_slots, f, attack_values = case
    honest = honest_and_slots[: f + 1]
    attackers = torch.tensor(attack_values, dtype=torch.float32).reshape(f, 3)
    combined = coordinate_median(torch.cat([honest, attackers]))
    assert bool((combined >= honest.min(dim=0).values).all())
    assert bool((combined <= honest.max(dim=0).values).all())


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 4).flatmap(lambda f: st.tuples(
    vectors(2 * f + 3, 4), st.just(f), st.floats(1e4, 1e8), st.lists(finite, min_size=4 * f, max_size=4 * f))))
def test_trimmed_mean_stays_within_the_honest_range_when_it_trims_the_attackers(case):
    honest_and_slots, f, offset, spread = case
    n = 2 * f + 3
    honest = honest_and_slots[: n - f]
    attackers = offset + torch.tensor(spread, dtype=torch.float32).reshape(f, 4)
    combined = trimmed_mean(torch.cat([honest, attackers]), f / n + 1e-9)
    tolerance = 1e-3 * (1 + honest.abs().max())
    assert bool((combined >= honest.min(dim=0).values - tolerance).all())
    assert bool((combined <= honest.max(dim=0).values + tolerance).all())


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 4).flatmap(lambda f: st.tuples(
    st.integers(2 * f + 3, 2 * f + 8).flatmap(lambda n: st.tuples(st.just(n), vectors(n, 5))),
    st.just(f), st.floats(1e4, 1e6), st.booleans())))
def test_krum_picks_an_honest_update_when_attackers_are_far_and_n_exceeds_2f_plus_2(case):
    (n, rows), f, distance, colluding = case
    honest = rows[: n - f] / 1e3  # honest updates within a unit cube of each other
    spread = torch.zeros(f, 5) if colluding else rows[n - f:]  # colluders send one identical vector
    attackers = distance + spread
    stacked = torch.cat([honest, attackers])
    assert krum_select(stacked, f, 1)[0] < n - f
    assert all(i < n - f for i in krum_select(stacked, f, n - f))


def test_krum_can_be_fooled_when_n_is_at_most_2f_plus_2():
    # Two identical attackers among five, f = 2: each attacker's one neighbour is the other.
    stacked = torch.tensor([[1.0, 2.0], [1.1, 2.1], [0.9, 1.9], [-5.0, -10.0], [-5.0, -10.0]])
    assert krum_select(stacked, 2, 1) == [3]
    assert krum_select(stacked, max_byzantine(5), 1) == [0]  # f = 1 (what five tolerate): the honest centre


@settings(max_examples=50, deadline=None)
@given(vectors(6, 4), st.floats(1e-3, 1e3))
def test_clipping_bounds_every_norm_and_keeps_directions(stacked, bound):
    norms = stacked.norm(dim=1)
    clipped = stacked * clip_factors(norms, bound)[:, None]
    assert bool((clipped.norm(dim=1) <= bound * (1 + 1e-5)).all())
    small = norms <= bound
    assert torch.equal(clipped[small], stacked[small])
    cosine = torch.nn.functional.cosine_similarity(clipped[~small], stacked[~small], dim=1)
    torch.testing.assert_close(cosine, torch.ones_like(cosine))


def test_lower_median_is_an_element_and_the_smaller_of_two():
    assert lower_median([3.0, 1.0]) == 1.0
    assert lower_median([5.0, 1.0, 3.0]) == 3.0
    assert lower_median([4.0, 1.0, 3.0, 2.0]) == 2.0


def test_the_plain_mean_is_the_strategy_itself():
    strategy = FedAvg()
    assert with_aggregator(strategy, AggregatorConfig()) is strategy
    assert isinstance(with_aggregator(FedAvg(), AggregatorConfig(clip_norm=1.0)), RobustAggregation)


def test_median_replaces_fedavgs_weighted_mean():
    updates = [update(0, [1.0, 0.0], 10), update(1, [2.0, 5.0], 1000), update(2, [9.0, 1.0], 10)]
    strategy = with_aggregator(FedAvg(server_lr=0.5), AggregatorConfig(name="median"))
    torch.testing.assert_close(strategy.aggregate(torch.ones(2), updates), torch.tensor([2.0, 1.5]))


def test_fednova_with_median_takes_the_median_of_normalised_deltas():
    updates = [update(0, [1.0], 10, 1), update(1, [8.0], 10, 4), update(2, [30.0], 10, 10)]
    strategy = with_aggregator(FedNova(), AggregatorConfig(name="median"))
    tau_eff = np.mean([momentum_normaliser(s, 0.0) for s in (1, 4, 10)])
    expected = torch.tensor([2.0 * tau_eff], dtype=torch.float32)  # median of 1/1, 8/4, 30/10, times tau_eff
    torch.testing.assert_close(strategy.aggregate(torch.zeros(1), updates), expected)


def test_multi_krum_averages_the_kept_updates_with_the_strategy_weights():
    honest = [update(i, [1.0 + 0.01 * i, 1.0], num_samples=10 * (i + 1)) for i in range(4)]
    updates = [*honest, update(4, [500.0, -500.0])]
    strategy = with_aggregator(FedAvg(), AggregatorConfig(name="multi_krum", num_byzantine=1, multi_krum_m=4))
    expected = FedAvg().aggregate(torch.zeros(2), honest)
    torch.testing.assert_close(strategy.aggregate(torch.zeros(2), updates), expected)


def test_clipping_with_a_fixed_bound_scales_only_the_long_updates():
    updates = [update(0, [3.0, 4.0]), update(1, [0.3, 0.4])]
    strategy = with_aggregator(FedAvg(), AggregatorConfig(clip_norm=1.0))
    torch.testing.assert_close(strategy.aggregate(torch.zeros(2), updates), torch.tensor([0.45, 0.6]))


def test_auto_clipping_bound_comes_from_recent_update_norms_not_the_model():
    strategy = RobustAggregation(FedAvg(), AggregatorConfig(clip_norm="auto", clip_history=2))
    strategy.aggregate(torch.zeros(1), [update(0, [1.0]), update(1, [2.0]), update(2, [3.0])])
    # Bound: the lower median of {1, 2, 3} and this round's {100, 200}: 3, whatever the global model.
    after = strategy.aggregate(torch.full((1,), 1e6), [update(3, [100.0]), update(4, [200.0])])
    torch.testing.assert_close(after, torch.full((1,), 1e6 + 3.0))
    state = strategy.state_dict()
    restored = RobustAggregation(FedAvg(), AggregatorConfig(clip_norm="auto", clip_history=2))
    restored.load_state_dict(state)
    nxt = [update(5, [50.0]), update(6, [60.0])]
    torch.testing.assert_close(restored.aggregate(torch.zeros(1), nxt), strategy.aggregate(torch.zeros(1), nxt))


class OneAtATime(Strategy):
    """A strategy that never averages a cohort (like FedAsync)."""

    name = "one_at_a_time"

    def aggregate(self, global_params, updates):
        return global_params + updates[0].delta


def test_a_cohort_rule_on_a_strategy_without_a_cohort_average_is_a_config_error():
    with pytest.raises(ConfigError, match=r"aggregator.name=median .*one_at_a_time"):
        with_aggregator(OneAtATime(), AggregatorConfig(name="median"))
    clipped = with_aggregator(OneAtATime(), AggregatorConfig(clip_norm=1.0))
    torch.testing.assert_close(clipped.aggregate(torch.zeros(1), [update(0, [5.0])]), torch.ones(1))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("aggregator.name=mode", "aggregator.name"),
        ("aggregator.trim_fraction=0.5", "aggregator.trim_fraction"),
        ("aggregator.clip_norm=-1", "aggregator.clip_norm'.*must be a positive number, 'auto' or null"),
        ("aggregator.clip_norm=autoo", "aggregator.clip_norm"),
        ("aggregator.clip_norm=true", "aggregator.clip_norm"),
        ("aggregator.clip_norm=.nan", "aggregator.clip_norm"),
        ("aggregator.num_byzantine=-1", "aggregator.num_byzantine"),
        ("aggregator.multi_krum_m=0", "aggregator.multi_krum_m"),
        ("aggregator.clip_history=0", "aggregator.clip_history"),
        ("validation.reference_rounds=0", "validation.reference_rounds"),
    ],
)
def test_bad_aggregator_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_aggregator_values_parse():
    overrides = ["aggregator.name=multi_krum", "aggregator.clip_norm=auto", "aggregator.num_byzantine=2"]
    config = load_config(None, overrides)
    assert (config.aggregator.name, config.aggregator.clip_norm, config.aggregator.num_byzantine) == (
        "multi_krum", "auto", 2)
    assert load_config(None, ["aggregator.clip_norm=2"]).aggregator.clip_norm == 2.0


class Recording(AsyncStrategy):
    """An asynchronous strategy that applies each arriving delta and remembers it."""

    name = "recording"

    def __init__(self):
        self.received = []

    def receive(self, global_params, arrival):
        self.received.append(arrival.update.delta)
        return global_params + arrival.update.delta


def test_asynchronous_arrivals_are_clipped_one_by_one_against_recent_arrivals():
    inner = Recording()
    strategy = with_aggregator(inner, AggregatorConfig(clip_norm="auto", clip_history=3))
    assert isinstance(strategy, ClippedArrivals) and strategy.name == "recording"
    for version, size in enumerate([1.0, 2.0, 3.0, 400.0, 500.0]):
        strategy.receive(torch.zeros(1), Arrival(update(version, [size]), torch.zeros(1), version))
    # Bounds: the lower median of the last three arrivals' norms: 1, 1, 2, 3, 400.
    assert [float(d) for d in inner.received] == [1.0, 1.0, 2.0, 3.0, 400.0]
    restored = with_aggregator(Recording(), AggregatorConfig(clip_norm="auto", clip_history=3))
    restored.load_state_dict(strategy.state_dict())
    assert restored.state_dict() == strategy.state_dict()
