import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.placement import ModelProfile, PlacementProblem, merge_stages
from fedfleet.placement.catalog import GIB
from fedfleet.placement.cost import scheme_from_runs
from fedfleet.placement.synthetic import random_catalog, random_profile, with_reachable_target


@pytest.mark.parametrize(
    ("scheme", "runs"),
    [
        ([0, 0, 1, 1, 0], [(0, 2, 0), (2, 4, 1), (4, 5, 0)]),
        ([2, 2, 2], [(0, 3, 2)]),
        ([0, 1, 2], [(0, 1, 0), (1, 2, 1), (2, 3, 2)]),
        ([1], [(0, 1, 1)]),
    ],
)
def test_consecutive_layers_on_one_type_merge_into_a_stage(scheme, runs):
    assert merge_stages(scheme) == runs
    assert merge_stages(np.array(scheme)) == runs


@given(st.lists(st.integers(0, 3), min_size=1, max_size=40))
def test_stages_tile_the_layers_and_neighbours_differ(scheme):
    runs = merge_stages(scheme)
    assert runs[0][0] == 0 and runs[-1][1] == len(scheme)
    assert all(a[1] == b[0] and a[2] != b[2] for a, b in itertools.pairwise(runs))
    assert scheme_from_runs(runs, len(scheme)).tolist() == scheme


def test_two_stage_cost_one_instance_each(two_layer_problem):
    # a on cpu: 10 samples x 1e7 / 1e9 s = 0.1 s per batch -> 100 samples/s >= target 50, k=1.
    # b on gpu: 10 x 1e8 / 1e10 = 0.1 s -> 100 samples/s, k=1.
    # link: 2 x 1e4 bytes/sample over 1e8 B/s -> 5000 samples/s. Throughput = 100.
    # rental 1 + 5 = 6 per hour; 3.6e6 samples / 100 per s = 10 h; cost 60.
    problem = two_layer_problem()
    plan = problem.plan([0, 1])
    assert [(s.device, s.instances) for s in plan.stages] == [("cpu", 1), ("gpu", 1)]
    assert [s.time_s for s in plan.stages] == pytest.approx([0.1, 0.1])
    assert plan.stages[0].transfer_s == pytest.approx(10 / 5000)
    assert plan.throughput == pytest.approx(100)
    assert plan.training_hours == pytest.approx(10)
    assert plan.cost == pytest.approx(60)
    assert problem.score(np.array([0, 1])) == (0.0, pytest.approx(60))


def test_two_stage_cost_with_data_parallel_instances(two_layer_problem):
    # target 150 needs k=2 per stage: 5 samples x 0.01 s + ring all-reduce
    # 2 x (2-1)/2 x 1e6 bytes / 1e9 B/s = 0.05 + 0.001 = 0.051 s -> 196.08 samples/s.
    # rental 2 x 1 + 2 x 5 = 12 per hour; hours = 1000 / 196.08 = 5.1; cost 61.2.
    plan = two_layer_problem(throughput_target=150).plan([0, 1])
    assert [s.instances for s in plan.stages] == [2, 2]
    assert [s.time_s for s in plan.stages] == pytest.approx([0.051, 0.051])
    assert plan.throughput == pytest.approx(10 / 0.051)
    assert plan.rental_per_hour == pytest.approx(12)
    assert plan.cost == pytest.approx(61.2)
    # memory per instance: state 1 x 1e6 params + 5 samples x 1e4 activation bytes
    assert plan.stages[0].memory_gib == pytest.approx(1.05e6 / GIB)


def test_one_stage_plan_has_no_transfer(two_layer_problem):
    plan = two_layer_problem().plan([1, 1])
    assert len(plan.stages) == 1 and plan.stages[0].transfer_s == 0
    # gpu: 10 x 1.1e8 / 1e10 = 0.11 s per batch -> 90.9 samples/s, one instance at price 5
    assert plan.throughput == pytest.approx(10 / 0.11)
    assert plan.cost == pytest.approx(3.6e6 / (10 / 0.11) / 3600 * 5)


def test_a_stage_no_type_count_can_provision_is_a_violation(two_layer_problem):
    # target 195: b on the cpu needs 10/k x 0.1 s per batch, too slow for any k <= 4.
    violation, cost = two_layer_problem(throughput_target=195).score(np.array([1, 0]))
    assert violation > 0 and cost == np.inf


def test_instances_shared_by_stages_of_one_type_respect_its_count(two_layer_problem):
    # target 250: layer a on the cpu needs k=3 (10/3 x 0.01 + 2 x 2/3 x 1e-3 = 0.0347 s,
    # 288 samples/s). Scheme a-b-a puts two such stages on the cpu: 6 instances > 4.
    a, b = two_layer_problem().profile.layers
    problem = two_layer_problem(ModelProfile("aba", (a, b, a)), gpu_count=3, throughput_target=250)
    assert problem.instances[0, 1, 0] == 3
    assert problem.score(np.array([0, 1, 0])) == (pytest.approx((6 - 4) / 4), np.inf)
    assert problem.score(np.array([0, 1, 1]))[0] == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=12, max_size=12))
def test_fast_score_agrees_with_the_full_plan(scheme):
    problem = _RANDOM_12x4
    violation, cost = problem.score(np.array(scheme))
    if violation == 0:
        plan = problem.plan(scheme)
        assert plan.cost == pytest.approx(cost, rel=1e-12)
        assert plan.throughput >= problem.job.throughput_target
        memory = {device.name: device.memory_gb for device in problem.catalog.devices}
        assert all(stage.memory_gib <= memory[stage.device] for stage in plan.stages)
    else:
        assert cost == np.inf


def _random_12x4():
    # a low target, so that about half of all schemes are feasible (seed 5: 54 %)
    rng = np.random.default_rng(5)
    profile = random_profile(12, rng)
    return PlacementProblem(profile, with_reachable_target(profile, random_catalog(4, rng), rng, 0.02, 0.05))


_RANDOM_12x4 = _random_12x4()
