import itertools

import numpy as np
import pytest

from fedfleet.errors import ConfigError
from fedfleet.placement import PLANNERS, PlacementInfeasible
from fedfleet.placement.planners import (
    BruteForcePlanner,
    DynamicProgrammingPlanner,
    GeneticPlanner,
    ReinforcePlanner,
)

SMALL = [(seed, 7, 3) for seed in range(6)]


def _optimum(problem):
    try:
        return BruteForcePlanner().fit(problem).plan_.cost
    except PlacementInfeasible:
        return None


@pytest.mark.parametrize(("seed", "layers", "types"), SMALL)
def test_genetic_finds_the_brute_force_optimum(random_problem, seed, layers, types):
    problem = random_problem(seed, layers, types)
    optimum = _optimum(problem)
    genetic = GeneticPlanner(random_state=seed)
    if optimum is None:
        with pytest.raises(PlacementInfeasible):
            genetic.fit(problem)
    else:
        assert genetic.fit(problem).plan_.cost == pytest.approx(optimum, rel=1e-9)


@pytest.mark.parametrize(("seed", "layers", "types"), SMALL)
def test_dynamic_programming_matches_brute_force(random_problem, seed, layers, types):
    problem = random_problem(seed, layers, types)
    optimum = _optimum(problem)
    if optimum is None:
        with pytest.raises(PlacementInfeasible):
            DynamicProgrammingPlanner().fit(problem)
        return
    dp = DynamicProgrammingPlanner().fit(problem)
    assert dp.lower_bound_ <= optimum * (1 + 1e-9)
    if dp.certified_:
        assert dp.plan_.cost == pytest.approx(optimum, rel=1e-9)
    else:
        assert dp.plan_.cost >= optimum * (1 - 1e-9)


def test_feasible_small_instances_exist_in_the_parity_set(random_problem):
    # the parity tests above must compare real plans, not only agree on infeasibility
    feasible = [_optimum(random_problem(*case)) is not None for case in SMALL]
    assert sum(feasible) >= 3


@pytest.mark.parametrize("name", ["greedy", "cpu-only", "gpu-only", "dp", "genetic"])
def test_no_planner_beats_the_optimum(random_problem, name):
    problem = random_problem(2, 7, 3)
    optimum = _optimum(problem)
    assert optimum is not None
    try:
        cost = PLANNERS.build(name).fit(problem).plan_.cost
    except PlacementInfeasible:
        return
    assert cost >= optimum * (1 - 1e-9)


def test_genetic_is_deterministic_by_seed(random_problem):
    problem = random_problem(11, 30, 4)
    first = GeneticPlanner(random_state=3).fit(problem)
    second = GeneticPlanner(random_state=3).fit(problem)
    assert first.plan_ == second.plan_
    assert first.history_ == second.history_


def test_genetic_best_cost_never_gets_worse(random_problem):
    history = GeneticPlanner(random_state=0, local_search=False).fit(random_problem(11, 30, 4)).history_
    assert all(b <= a for a, b in itertools.pairwise(history))


def test_plain_genetic_algorithm_still_returns_a_feasible_plan(random_problem):
    problem = random_problem(2, 7, 3)
    plan = GeneticPlanner(random_state=0, local_search=False).fit(problem).plan_
    assert problem.score(np.array(plan.scheme))[0] == 0


def test_brute_force_refuses_huge_search_spaces(random_problem):
    with pytest.raises(ConfigError, match="max_schemes"):
        BruteForcePlanner(max_schemes=100).fit(random_problem(0, 7, 3))


def test_single_type_planner_needs_a_type_of_its_kind(two_layer_problem):
    with pytest.raises(ConfigError, match="no accelerator type"):
        PLANNERS.build("cpu-only").__class__(kind="accelerator").fit(two_layer_problem())


def test_unknown_planner_lists_the_choices():
    with pytest.raises(ConfigError, match="genetic"):
        PLANNERS.build("annealing")


def test_reinforce_policy_is_seeded_and_never_beats_the_optimum(random_problem):
    problem = random_problem(2, 7, 3)
    first = ReinforcePlanner(iterations=15, batch=16, random_state=1).fit(problem)
    second = ReinforcePlanner(iterations=15, batch=16, random_state=1).fit(problem)
    assert first.plan_ == second.plan_ and first.history_ == second.history_
    assert first.plan_.cost >= _optimum(problem) * (1 - 1e-9)


def test_reinforce_policy_learns_the_two_layer_optimum(two_layer_problem):
    problem = two_layer_problem(throughput_target=150)
    optimum = BruteForcePlanner().fit(problem).plan_.cost
    assert ReinforcePlanner(iterations=30, batch=16, random_state=0).fit(problem).plan_.cost == pytest.approx(optimum)
