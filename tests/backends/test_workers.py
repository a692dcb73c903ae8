"""Worker processes: the same updates as sequential training, no lost update, no process left behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.backends import LocalBackend, WorkerBackend, WorkerError, build_backend
from fedfleet.backends.workers import assign_greedy
from fedfleet.config import BackendConfig, load_config
from fedfleet.errors import ConfigError
from fedfleet.fl import build_federated_data
from fedfleet.fl.client import LocalTrainer
from fedfleet.fl.messages import LocalTrainingPlan, TrainTask
from fedfleet.fl.simulation import run_simulation
from fedfleet.models import build_model


def without_wall_time(records):
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in records]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_any_worker_count_gives_the_sequential_run(digits_config, mode):
    digits_config["train"]["mode"] = mode
    if mode == "async":
        digits_config["strategy"] = {"name": "fedasync"}
    results = []
    for workers in (1, 2, 3):
        config = load_config(digits_config | {"backend": {"workers": workers}})
        results.append(run_simulation(config))
    reference = results[0]
    for result in results[1:]:
        assert without_wall_time(result.history) == without_wall_time(reference.history)
        for ours, theirs in zip(result.model.parameters(), reference.model.parameters(), strict=True):
            assert torch.equal(ours, theirs)
    assert multiprocessing.active_children() == []


def test_auto_is_one_worker_per_core_and_one_is_sequential():
    model = torch.nn.Linear(2, 2)
    assert isinstance(build_backend(BackendConfig(workers=1), model, []), LocalBackend)
    automatic = build_backend(BackendConfig(workers="auto"), model, [])
    cores = len(os.sched_getaffinity(0))
    assert (automatic.num_workers if cores > 1 else 1) == cores


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 100), max_size=30), st.integers(1, 6))
def test_greedy_assignment_places_every_task_once_and_balances_within_the_largest(costs, workers):
    assignment = assign_greedy(costs, workers)
    assert sorted(i for tasks in assignment for i in tasks) == list(range(len(costs)))
    loads = [sum(costs[i] for i in tasks) for tasks in assignment]
    assert max(loads) - min(loads) <= max(costs, default=0)


def tasks_and_data(count=6):
    config = load_config({"data": {"dataset": "digits", "num_clients": count}, "train": {"clients_per_round": count}})
    data = build_federated_data(config.data, 0)
    torch.manual_seed(0)
    model = build_model("mlp", data.input_shape, data.num_classes)
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    plan = LocalTrainingPlan(epochs=1, batch_size=16, lr=0.1)
    tasks = [TrainTask(c, params, 0, plan, seed=100 + c) for c in range(count)]
    return model, data.clients, tasks


class DyingOnce(LocalTrainer):
    """Kills the process training client 3 the first time (a worker's crash mid-round)."""

    def __init__(self, model, marker: Path) -> None:
        super().__init__(model)
        self.marker = marker

    def train(self, task, data):
        if task.client_id == 3 and not self.marker.exists():
            self.marker.touch()
            os._exit(1)
        return super().train(task, data)


def assert_same_updates(ours, theirs):
    assert [u.client_id for u in ours] == [u.client_id for u in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a.delta, b.delta) and a.num_samples == b.num_samples and a.metrics == b.metrics


def test_a_worker_killed_mid_round_loses_no_update(tmp_path):
    model, clients, tasks = tasks_and_data()
    expected = LocalBackend(LocalTrainer(model), clients).run(tasks)
    with WorkerBackend(DyingOnce(model, tmp_path / "died"), clients, workers=2) as backend:
        assert_same_updates(backend.run(tasks), expected)
    assert (tmp_path / "died").exists()


def test_a_worker_killed_between_rounds_is_replaced():
    model, clients, tasks = tasks_and_data()
    expected = LocalBackend(LocalTrainer(model), clients).run(tasks)
    with WorkerBackend(LocalTrainer(model), clients, workers=2) as backend:
        backend.run(tasks)
        victim = backend._workers[0].process
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        assert_same_updates(backend.run(tasks), expected)


class AlwaysDying(LocalTrainer):
    def train(self, task, data):
        os._exit(1)


def test_workers_that_keep_dying_stop_the_round_with_a_clear_error():
    model, clients, tasks = tasks_and_data()
    with pytest.raises(WorkerError, match=r"died 4 times in one round; .* backend\.workers=1"):
        WorkerBackend(AlwaysDying(model), clients, workers=2).run(tasks)
    assert multiprocessing.active_children() == []


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("error", [Interrupted, KeyboardInterrupt])
def test_workers_stop_when_the_run_raises_or_is_interrupted(digits_config, error):
    def hook(task, update):
        if task.client_id >= 0:
            raise error
        return update

    config = load_config(digits_config | {"backend": {"workers": 2}})
    with pytest.raises(error):
        run_simulation(config, client_hooks=[hook])
    assert multiprocessing.active_children() == []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_workers_exit_when_their_parent_is_killed():
    script = textwrap.dedent("""
        import sys, time
        sys.path[:0] = [sys.argv[1]]
        from test_workers import tasks_and_data
        from fedfleet.backends import WorkerBackend
        from fedfleet.fl.client import LocalTrainer
        model, clients, tasks = tasks_and_data()
        backend = WorkerBackend(LocalTrainer(model), clients, workers=2)
        backend.run(tasks)
        print(" ".join(str(w.process.pid) for w in backend._workers), flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).parent)], stdout=subprocess.PIPE,
                              text=True)
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(alive(p) for p in pids)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)


@pytest.mark.parametrize("value", ["0", "many", "2.5", "true"])
def test_a_bad_worker_count_is_one_line_naming_the_key(value):
    with pytest.raises(ConfigError, match=r"^config key 'backend\.workers': must be a whole number .* or 'auto'$"):
        load_config(None, [f"backend.workers={value}"])


def test_ctrl_c_stops_the_run_and_its_workers():
    psutil = pytest.importorskip("psutil")
    script = textwrap.dedent("""
        from fedfleet.config import load_config
        from fedfleet.fl.simulation import run_simulation
        config = load_config({"data": {"dataset": "digits", "num_clients": 8}, "model": {"name": "mlp"},
                              "train": {"rounds": 100000, "clients_per_round": 8, "eval_every": 1000},
                              "backend": {"workers": 2}, "checkpoint_every": 0})
        run_simulation(config)
    """)
    run = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    workers = []
    while len(workers) < 2 and time.monotonic() < deadline and run.poll() is None:
        workers = psutil.Process(run.pid).children()
        time.sleep(0.1)
    assert len(workers) == 2, "the run never started its workers"
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=30)
    assert "KeyboardInterrupt" in stderr
    _, still_running = psutil.wait_procs(workers, timeout=5)
    assert not still_running
