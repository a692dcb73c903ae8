import numpy as np
import pytest

from fedfleet.errors import ConfigError
from fedfleet.placement import PLANNERS, ModelProfile, PlacementInfeasible, PlacementProblem
from fedfleet.placement.catalog import build_catalog
from fedfleet.placement.planners import (
    BruteForcePlanner,
    DynamicProgrammingPlanner,
    GeneticPlanner,
    ReinforcePlanner,
)
from fedfleet.placement.synthetic import random_catalog, random_profile, with_reachable_target

from .conftest import two_type_catalog

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


@pytest.mark.parametrize(("seed", "layers", "types"), [*SMALL, (40, 8, 3)])
def test_dynamic_programming_matches_brute_force(random_problem, seed, layers, types):
    # seed 40, 8 x 3: the least-rental partition breaks a shared count at every floor
    problem = random_problem(seed, layers, types)
    optimum = _optimum(problem)
    if optimum is None:
        with pytest.raises(PlacementInfeasible):
            DynamicProgrammingPlanner().fit(problem)
        return
    assert DynamicProgrammingPlanner().fit(problem).plan_.cost == pytest.approx(optimum, rel=1e-9)


def _tight_count_problem(seed):
    # random problems with 1-5 instances per type and a high target: shared counts often bind
    rng = np.random.default_rng([7, seed])
    profile = random_profile(int(rng.integers(5, 8)), rng)
    catalog = with_reachable_target(profile, random_catalog(int(rng.integers(2, 4)), rng), rng, 0.5, 6)
    raw = catalog.model_dump()
    for device in raw["devices"]:
        device["count"] = int(rng.integers(1, 6))
    return PlacementProblem(profile, build_catalog(raw))


def test_dynamic_programming_is_exact_when_shared_counts_bind():
    tracked = 0
    for seed in range(40):
        problem = _tight_count_problem(seed)
        optimum = _optimum(problem)
        if optimum is None:
            with pytest.raises(PlacementInfeasible, match=r"^(memory|throughput|instance counts): "):
                DynamicProgrammingPlanner().fit(problem)
            continue
        dp = DynamicProgrammingPlanner().fit(problem)
        assert dp.plan_.cost == pytest.approx(optimum, rel=1e-9), seed
        tracked += bool(dp.tracked_types_)
    assert tracked >= 3  # the count-tracking state was exercised, not only the relaxed DP


def test_dynamic_programming_tries_past_the_least_rental_partition(two_layer_problem):
    # target 150: each b needs 2 gpus; with 3 gpus the least-rental partition b|a|b on
    # gpu|cpu|gpu needs 4 at every floor; the optimum puts one b on the pricier gpu2.
    a, b = two_layer_problem().profile.layers
    raw = two_type_catalog(3, throughput_target=150)
    raw["devices"].append({"name": "gpu2", "kind": "gpu", "count": 4, "flops": 1e10, "memory_gb": 1,
                           "price_per_hour": 7.0, "intra_gbps": 8})
    raw["links"] += [{"between": ["cpu", "gpu2"], "gbps": 0.8}, {"between": ["gpu", "gpu2"], "gbps": 0.8}]
    problem = PlacementProblem(ModelProfile("bab", (b, a, b)), build_catalog(raw))
    optimum = BruteForcePlanner().fit(problem).plan_
    dp = DynamicProgrammingPlanner().fit(problem)
    assert optimum.cost == pytest.approx(132.6) and dp.plan_.cost == pytest.approx(optimum.cost)
    assert sorted(dp.plan_.scheme) == [0, 1, 2] and dp.tracked_types_ == ("gpu",)


def test_feasible_small_instances_exist_in_the_parity_set(random_problem):
    # the parity tests above must compare real plans, not only agree on infeasibility
    feasible = [_optimum(random_problem(*case)) is not None for case in SMALL]
    assert sum(feasible) >= 3


def test_dynamic_programming_refuses_a_count_state_too_large_to_track(two_layer_problem, monkeypatch):
    a, b = two_layer_problem().profile.layers
    problem = two_layer_problem(ModelProfile("bab", (b, a, b)), gpu_count=3, throughput_target=150)
    monkeypatch.setattr("fedfleet.placement.partition.MAX_STATES", 20)  # 4 boundaries x 2 types x 4 gpu counts
    with pytest.raises(ConfigError, match=r"^dp: tracking the shared instance counts of gpu \(count 3\) needs 32 "
                                          r"states, over 20; try --planner genetic$"):
        DynamicProgrammingPlanner().fit(problem)


@pytest.mark.parametrize("name", ["greedy", "gpu-only", "dp", "genetic"])
def test_no_planner_beats_the_optimum(random_problem, name):
    problem = random_problem(2, 7, 3)
    optimum = _optimum(problem)
    assert optimum is not None
    cost = PLANNERS.build(name).fit(problem).plan_.cost  # each of them finds a plan here
    assert cost >= optimum * (1 - 1e-9)


def test_cpu_only_fails_for_its_own_reason_where_a_plan_exists(random_problem):
    with pytest.raises(PlacementInfeasible, match=r"^throughput: the whole model on cpu reaches at most"):
        PLANNERS.build("cpu-only").fit(random_problem(2, 7, 3))


def test_a_heuristic_that_misses_an_existing_plan_says_so(random_problem):
    problem = random_problem(14, 6, 3)
    assert _optimum(problem) is not None
    with pytest.raises(PlacementInfeasible, match=r"^GreedyPlanner found no plan .* but one exists; --planner dp"):
        PLANNERS.build("greedy").fit(problem)


def test_genetic_is_deterministic_by_seed(random_problem):
    problem = random_problem(11, 30, 4)
    first = GeneticPlanner(random_state=3).fit(problem)
    second = GeneticPlanner(random_state=3).fit(problem)
    assert first.plan_ == second.plan_
    assert first.history_ == second.history_


def test_genetic_returns_its_best_and_stops_after_patience(random_problem):
    problem = random_problem(11, 30, 4)
    genetic = GeneticPlanner(random_state=0, patience=8, local_search=False).fit(problem)
    history = genetic.history_
    assert genetic.generations_ == len(history) < genetic.generations
    assert genetic.plan_.cost == pytest.approx(history[-1]) == pytest.approx(min(history))
    # it improved after a few generations, then stopped on the 8th in a row without a better plan
    assert len(set(history[-9:])) == 1 and history[-10] > history[-1]


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
