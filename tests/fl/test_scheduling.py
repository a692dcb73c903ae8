"""Scheduling policies: the cost on a hand-computed case, Jain's index, optimal sets, RLDS save/reload."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.errors import ConfigError
from fedfleet.fl.scheduling import (
    BodsPolicy,
    FedCSPolicy,
    GeneticPolicy,
    GreedyPolicy,
    PlanningProblem,
    RandomPolicy,
    RldsPolicy,
    jain_index,
    round_cost,
)
from fedfleet.fl.scheduling.bods import expected_improvement


def test_cost_on_a_hand_computed_case():
    # devices 0..3 take 1, 2, 4, 8 s; served so far 1, 0, 0, 1 times; planning round 2 with {0, 2}:
    # T = max(1, 4) = 4; frequencies (2, 0, 1, 1) / 2 = (1, 0, .5, .5), mean .5, variance (.25+.25)/4 = .125
    times, counts = np.array([1.0, 2.0, 4.0, 8.0]), np.array([1, 0, 0, 1])
    assert round_cost(times, counts, 2, np.array([0, 2]), alpha=1.0, beta=2.0) == pytest.approx(4.0 + 2 * 0.125)
    assert round_cost(times, counts, 2, np.array([0, 2]), alpha=0.5, beta=0.0) == pytest.approx(2.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 9), st.integers(1, 5), st.integers(0, 10_000))
def test_vectorised_costs_equal_the_plain_ones(n, r, seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, n + 1))
    problem = PlanningProblem(0, r, np.arange(n), k, rng.uniform(1, 9, n), rng.integers(0, r, n), 1.0, 30.0)
    sets = np.stack([np.sort(rng.choice(n, k, replace=False)) for _ in range(5)])
    assert problem.costs(sets) == pytest.approx([problem.cost(s) for s in sets])


def test_jain_index_bounds():
    assert jain_index(np.array([3, 3, 3, 3])) == pytest.approx(1.0)
    assert jain_index(np.array([4, 0, 0, 0])) == pytest.approx(0.25)
    assert jain_index(np.array([1, 2, 3])) == pytest.approx(36 / (3 * 14))
    assert jain_index(np.zeros(5)) == 1.0


def test_expected_improvement_is_zero_without_hope_and_grows_with_uncertainty():
    mean, best = np.array([5.0, 5.0, 1.0]), 2.0
    ei = expected_improvement(mean, np.array([0.0, 1.0, 0.0]), best, 0.0)
    assert ei[0] == 0.0 and ei[1] > 0.0 and ei[2] == pytest.approx(1.0)


def fairness_matters():
    """8 devices, 3 per round: the 3 fastest have served most, so the cheapest set is not the fastest."""
    times = np.arange(1.0, 9.0)
    counts = np.array([3, 3, 3, 0, 0, 1, 0, 2])
    problem = PlanningProblem(0, 4, np.arange(8), 3, times, counts, alpha=1.0, beta=60.0)
    every = np.array(list(itertools.combinations(range(8), 3)))
    return problem, every[np.argmin(problem.costs(every))], float(problem.costs(every).min())


def test_the_instance_needs_more_than_greed():
    problem, best, _ = fairness_matters()
    assert not np.array_equal(GreedyPolicy().plan(problem, np.random.default_rng(0)), best)


@pytest.mark.parametrize("policy", [GeneticPolicy(), BodsPolicy(initial=8, iterations=12, pool=40)],
                         ids=["genetic", "bods"])
def test_search_policies_find_the_lowest_cost_set_of_an_enumerable_instance(policy):
    problem, best, lowest = fairness_matters()
    for seed in range(3):
        chosen = policy.plan(problem, np.random.default_rng(seed))
        assert problem.cost(chosen) == pytest.approx(lowest)
        assert np.array_equal(chosen, best)


@pytest.mark.parametrize("policy", [RandomPolicy(), GreedyPolicy(), FedCSPolicy(), GeneticPolicy(generations=3),
                                    BodsPolicy(initial=3, iterations=2, pool=10), RldsPolicy(1, imitation_steps=2)],
                         ids=lambda p: p.name)
def test_every_policy_picks_distinct_candidates(policy):
    rng = np.random.default_rng(1)
    candidates = np.array([0, 2, 3, 5, 7, 8, 9])  # devices 1, 4, 6 are busy
    problem = PlanningProblem(0, 2, candidates, 4, rng.uniform(1, 9, 10), rng.integers(0, 2, 10), 1.0, 10.0)
    chosen = policy.plan(problem, rng)
    assert len(set(chosen.tolist())) == len(chosen) and set(chosen.tolist()) <= set(candidates.tolist())
    assert len(chosen) == 4 or (policy.name == "fedcs" and 1 <= len(chosen) <= 4)


def test_fedcs_takes_only_devices_within_its_deadline():
    problem = PlanningProblem(0, 1, np.arange(6), 4, np.array([1.0, 9, 2, 9, 3, 9]), np.zeros(6), 1.0, 0.0)
    assert FedCSPolicy(deadline_s=5.0).plan(problem, np.random.default_rng(0)).tolist() == [0, 2, 4]
    assert FedCSPolicy(deadline_s=0.5).plan(problem, np.random.default_rng(0)).tolist() == [0]


def problems(seed, count=4):
    rng = np.random.default_rng(seed)
    return [PlanningProblem(j % 2, 1 + j, np.sort(rng.choice(20, 12, replace=False)), 4, rng.uniform(1, 20, 20),
                            rng.integers(0, 1 + j, 20), 1.0, 100.0) for j in range(count)]


def test_rlds_learns_and_a_saved_policy_reloads_to_the_same_choices(tmp_path):
    trained = RldsPolicy(2, epsilon=0.2, random_state=3)
    before = trained.state_dict()["network"]["0.weight"].clone()
    for problem in problems(0):
        trained.plan(problem, np.random.default_rng(problem.round_index))
    assert not np.allclose(before, trained.state_dict()["network"]["0.weight"])  # it learned
    path = trained.save(tmp_path / "rlds.safetensors")
    loaded = RldsPolicy(2, epsilon=0.2, random_state=99, weights=path)
    for problem in problems(1, 6):
        seed = 1000 + problem.round_index
        assert trained.plan(problem, np.random.default_rng(seed)).tolist() == \
            loaded.plan(problem, np.random.default_rng(seed)).tolist()
    fresh = RldsPolicy(2, epsilon=0.2, random_state=99)
    fresh.load_state_dict(trained.state_dict())
    assert fresh.state_dict()["baseline"] == trained.state_dict()["baseline"]


def test_rlds_weights_of_another_shape_or_not_safetensors_are_one_line(tmp_path):
    path = RldsPolicy(1, hidden=8).save(tmp_path / "rlds.safetensors")
    with pytest.raises(ConfigError, match=r"another shape; set scheduler\.rlds\.hidden"):
        RldsPolicy(1, hidden=16, weights=path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ConfigError, match="cannot be read as safetensors"):
        RldsPolicy(1, weights=tmp_path / "junk.safetensors")
