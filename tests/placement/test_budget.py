"""The budget objective: the fastest plan renting at most job.budget_per_hour."""

import itertools
import math

import numpy as np
import pytest

from fedfleet.errors import ConfigError
from fedfleet.placement import PLANNERS, PlacementInfeasible, PlacementProblem
from fedfleet.placement.budget import fastest_within_budget
from fedfleet.placement.catalog import build_catalog
from fedfleet.placement.planners.exhaustive import all_stage_plans
from fedfleet.placement.synthetic import random_catalog, random_profile, with_reachable_target

from .conftest import two_type_catalog

GIB, GBIT = 2.0**30, 1e9 / 8


def brute_fastest(problem, budget):
    """Highest Θ over every stage plan and every instance count per stage, from the docs' formulas."""
    layers, catalog, job = problem.profile.layers, problem.catalog, problem.job
    names = [d.name for d in catalog.devices]
    best = 0.0
    for runs in all_stage_plans(len(layers), len(catalog.devices)):
        choices = [range(1, min(catalog.devices[t].count, job.batch_size) + 1) for _, _, t in runs]
        for ks in itertools.product(*choices):
            used = [0] * len(names)
            rental, throughput = 0.0, math.inf
            for position, ((first, end, t), k) in enumerate(zip(runs, ks, strict=True)):
                device = catalog.devices[t]
                seconds = sum(layer.flops / device.flops / device.efficiency.get(layer.kind, 1.0)
                              for layer in layers[first:end])
                sync = sum(layer.gradient_bytes for layer in layers[first:end])
                memory = job.state_factor * sum(layer.param_bytes for layer in layers[first:end]) + \
                    job.batch_size / k * sum(layer.activation_bytes for layer in layers[first:end])
                if memory > device.memory_gb * GIB:
                    throughput = 0.0
                tau = job.batch_size / k * seconds + 2.0 * (k - 1) / k * sync / (device.intra_gbps * GBIT)
                throughput = min(throughput, job.batch_size / tau if tau > 0 else math.inf)
                used[t] += k
                rental += k * device.price_per_hour
                if position + 1 < len(runs):
                    other = names[runs[position + 1][2]]
                    gbps = device.intra_gbps if other == device.name else catalog.default_link_gbps
                    for link in catalog.links:
                        if set(link.between) == {device.name, other}:
                            gbps = link.gbps
                    throughput = min(throughput, gbps * GBIT / (2.0 * layers[end - 1].activation_bytes))
            if all(u <= d.count for u, d in zip(used, catalog.devices, strict=True)) and rental <= budget \
                    and throughput >= job.throughput_target:
                best = max(best, throughput)
    return best


def _small_problem(seed):
    rng = np.random.default_rng([16, seed])
    profile = random_profile(4, rng)
    catalog = with_reachable_target(profile, random_catalog(2, rng), rng, 0.2, 1.0)
    raw = catalog.model_dump()
    for device in raw["devices"]:
        device["count"] = int(rng.integers(1, 5))
    return PlacementProblem(profile, build_catalog(raw))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("share", [0.3, 0.7])
def test_dp_is_the_fastest_plan_within_the_budget(seed, share):
    problem = _small_problem(seed)
    budget = share * sum(d.count * d.price_per_hour for d in problem.catalog.devices)
    expected = brute_fastest(problem, budget)
    if expected == 0.0:
        with pytest.raises(PlacementInfeasible, match=r"^(budget|memory|throughput|instance counts): "):
            fastest_within_budget(problem, lambda: PLANNERS.build("dp"), budget)
        return
    plan, _ = fastest_within_budget(problem, lambda: PLANNERS.build("dp"), budget)
    assert plan.rental_per_hour <= budget
    assert plan.throughput == pytest.approx(expected, rel=1e-9)


def test_the_parity_set_has_plans_within_budget():
    found = sum(brute_fastest(problem, 0.5 * sum(d.count * d.price_per_hour for d in problem.catalog.devices)) > 0
                for problem in map(_small_problem, range(6)))
    assert found >= 3


@pytest.mark.parametrize(("name", "params"), [("genetic", {"population": 10, "patience": 5}), ("greedy", {}),
                                              ("rl", {"iterations": 10, "batch": 8}), ("brute", {})])
def test_every_planner_stays_within_the_budget(two_layer_problem, name, params):
    # gpu-only a|b at one gpu each reaches 100 samples/s for 10 per hour; a budget of 10 allows it
    problem = two_layer_problem()
    plan, probed = fastest_within_budget(problem, lambda: PLANNERS.build(name, **params), 10.0)
    dp, _ = fastest_within_budget(problem, lambda: PLANNERS.build("dp"), 10.0)
    assert plan.rental_per_hour <= 10.0 and plan.throughput <= dp.throughput * (1 + 1e-9)
    assert probed.job.throughput_target <= plan.throughput


def test_a_budget_below_the_cheapest_plan_names_the_rental_it_needs(two_layer_problem):
    problem = two_layer_problem()
    with pytest.raises(PlacementInfeasible, match=r"^budget: the cheapest plan reaching 50 samples/s rents 5 per "
                                                  r"hour, over job.budget_per_hour 1; raise the budget"):
        fastest_within_budget(problem, lambda: PLANNERS.build("dp"), 1.0)


def test_max_throughput_needs_a_budget():
    with pytest.raises(ConfigError, match="budget_per_hour"):
        build_catalog(two_type_catalog(objective="max_throughput"))
