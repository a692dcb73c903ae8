"""The Ray backend: the same run as the local one, and no update lost when an actor dies."""

from __future__ import annotations

import pytest
import torch

from fedfleet.backends import LocalBackend, RayBackend
from fedfleet.config import load_config
from fedfleet.fl.client import LocalTrainer
from fedfleet.fl.simulation import run_simulation
from fedfleet.fl.strategies.base import weighted_sum
from tests.backends.test_summed import checks_for
from tests.backends.test_workers import DyingOnce, assert_same_updates, tasks_and_data, without_wall_time

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'fedfleet[ray]')")


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    """One local Ray with 2 CPUs for the module; the backends join it instead of starting their own."""
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as exc:
        pytest.skip(f"Ray cannot start on this machine: {type(exc).__name__}: {exc}")
    yield
    ray.shutdown()


def test_a_ray_run_equals_the_local_run(digits_config):
    local = run_simulation(load_config(digits_config | {"backend": {"workers": 1}}))
    on_ray = run_simulation(load_config(digits_config | {"backend": {"name": "ray", "workers": 2}}))
    assert without_wall_time(on_ray.history) == without_wall_time(local.history)
    for ours, theirs in zip(on_ray.model.parameters(), local.model.parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_an_async_run_on_ray_equals_the_local_one(digits_config):
    digits_config |= {"train": digits_config["train"] | {"mode": "async"}, "strategy": {"name": "fedasync"}}
    local = run_simulation(load_config(digits_config | {"backend": {"workers": 1}}))
    on_ray = run_simulation(load_config(digits_config | {"backend": {"name": "ray", "workers": 2}}))
    assert without_wall_time(on_ray.history) == without_wall_time(local.history)


def test_a_killed_actor_is_replaced_and_loses_no_update():
    model, clients, tasks = tasks_and_data()
    expected = LocalBackend(LocalTrainer(model), clients).run(tasks)
    backend = RayBackend(LocalTrainer(model), clients, workers=2)
    try:
        assert_same_updates(backend.run(tasks), expected)
        ray.kill(backend._actors[0])
        assert_same_updates(backend.run(tasks), expected)
    finally:
        backend.close()


def test_an_actor_dying_mid_round_loses_no_update(tmp_path):
    model, clients, tasks = tasks_and_data()
    expected = LocalBackend(LocalTrainer(model), clients).run(tasks)
    backend = RayBackend(DyingOnce(model, tmp_path / "died"), clients, workers=2)
    try:
        assert_same_updates(backend.run(tasks), expected)
    finally:
        backend.close()
    assert (tmp_path / "died").exists()


def test_a_pruned_run_on_ray_equals_the_local_run(digits_config):
    digits_config |= {"model": {"name": "cnn"}, "pruning": {"enabled": True, "method": "uniform", "start_round": 2}}
    local = run_simulation(load_config(digits_config | {"backend": {"workers": 1}}))
    on_ray = run_simulation(load_config(digits_config | {"backend": {"name": "ray", "workers": 2}}))
    assert on_ray.summary["model_params"] < on_ray.history[0]["model_params"]
    assert without_wall_time(on_ray.history) == without_wall_time(local.history)


def test_summed_updates_on_ray_equal_the_per_update_run(digits_config):
    per_update = run_simulation(load_config(digits_config | {"backend": {"workers": 1}}))
    summed = run_simulation(load_config(digits_config | {"backend": {"name": "ray", "workers": 2,
                                                                     "sum_updates": True}}))
    for ours, theirs in zip(summed.model.parameters(), per_update.model.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert [r["updates_accepted"] for r in summed.history] == [r["updates_accepted"] for r in per_update.history]


def test_an_actor_killed_between_summaries_and_sum_trains_its_tasks_again():
    model, clients, tasks = tasks_and_data()
    weights = {i: 1 / 6 for i in range(6)}
    updates = LocalBackend(LocalTrainer(model), clients).run(tasks)
    expected = weighted_sum([u.delta for u in updates], list(weights.values()))
    backend = RayBackend(LocalTrainer(model), clients, workers=2)
    try:
        summaries = backend.train_held(tasks, checks_for(clients))
        assert [s.client_id for s in summaries] == [u.client_id for u in updates]
        ray.kill(backend._actors[0])
        torch.testing.assert_close(backend.sum_held(weights), expected, rtol=1e-6, atol=1e-7)
    finally:
        backend.close()
