"""Summed updates: workers send summaries and one weighted sum each; the run is the per-update run."""

from __future__ import annotations

import math
import multiprocessing
import os
import signal

import pytest
import torch

from fedfleet.backends import LocalBackend, WorkerBackend
from fedfleet.config import load_config
from fedfleet.fl.backend import LocalChecks, SummingBackend
from fedfleet.fl.client import LocalTrainer
from fedfleet.fl.simulation import run_simulation
from fedfleet.fl.strategies.base import weighted_sum
from fedfleet.fl.strategies.fedavg import FedAvg, FedProx
from fedfleet.fl.strategies.fednova import FedNova
from fedfleet.fl.validation import ServerKnowledge, summarise_update
from tests.backends.test_workers import DyingOnce, tasks_and_data

COUNTED = ("updates_accepted", "updates_rejected", "bytes_up", "bytes_down", "dropped")


class Misbehaving(LocalTrainer):
    """Client 1 returns NaN, client 4 an update 50x too large: one local, one cohort rejection."""

    def train(self, task, data):
        update = super().train(task, data)
        if task.client_id == 1:
            return type(update)(**{**update.__dict__, "delta": torch.full_like(update.delta, math.nan)})
        if task.client_id == 4:
            return type(update)(**{**update.__dict__, "delta": update.delta * 50})
        return update


def checks_for(clients, ratio=10.0):
    return LocalChecks(torch.tensor([len(c) for c in clients]).numpy(), None, ratio)


def expected_summaries_and_sum(trainer, clients, tasks, weights):
    updates = LocalBackend(trainer, clients).run(tasks)
    server = ServerKnowledge(tasks[0].params, checks_for(clients).num_samples, tasks[0].plan)
    summaries = [summarise_update(u, server, 10.0) for u in updates]
    total = weighted_sum([updates[i].delta for i in sorted(weights)], [weights[i] for i in sorted(weights)])
    return summaries, total


def assert_same_summaries(ours, theirs):
    assert [(s.client_id, s.num_samples, s.local_steps, s.problem) for s in ours] == \
        [(s.client_id, s.num_samples, s.local_steps, s.problem) for s in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert (math.isnan(a.norm) and math.isnan(b.norm)) or a.norm == pytest.approx(b.norm, rel=1e-6)
        assert a.metrics == b.metrics


def test_workers_summarise_each_update_and_return_its_weighted_sum():
    model, clients, tasks = tasks_and_data()
    trainer = Misbehaving(model)
    weights = {0: 0.2, 2: 0.3, 3: 0.1, 5: 0.4}
    expected, total = expected_summaries_and_sum(trainer, clients, tasks, weights)
    with WorkerBackend(trainer, clients, workers=2) as backend:
        assert isinstance(backend, SummingBackend)
        summaries = backend.train_held(tasks, checks_for(clients))
        assert_same_summaries(summaries, expected)
        assert "NaN" in summaries[1].problem and summaries[4].problem is None  # the outlier is the cohort's call
        torch.testing.assert_close(backend.sum_held(weights), total, rtol=1e-6, atol=1e-7)


def test_a_worker_killed_between_summaries_and_sum_trains_its_tasks_again():
    model, clients, tasks = tasks_and_data()
    weights = {i: 1 / 6 for i in range(6)}
    _, total = expected_summaries_and_sum(LocalTrainer(model), clients, tasks, weights)
    with WorkerBackend(LocalTrainer(model), clients, workers=2) as backend:
        backend.train_held(tasks, checks_for(clients))
        victim = backend._workers[0].process
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        torch.testing.assert_close(backend.sum_held(weights), total, rtol=1e-6, atol=1e-7)
    assert multiprocessing.active_children() == []


def test_a_worker_dying_while_it_trains_loses_no_summary(tmp_path):
    model, clients, tasks = tasks_and_data()
    expected, _ = expected_summaries_and_sum(LocalTrainer(model), clients, tasks, {0: 1.0})
    with WorkerBackend(DyingOnce(model, tmp_path / "died"), clients, workers=2) as backend:
        assert_same_summaries(backend.train_held(tasks, checks_for(clients)), expected)
    assert (tmp_path / "died").exists()


@pytest.mark.parametrize("extra", [
    {},
    {"strategy": {"name": "fedprox", "mu": 0.01}},
    {"validation": {"max_norm_ratio": 1.05}},  # the cohort test rejects some honest updates
])
def test_a_summed_run_is_the_per_update_run(digits_config, extra, monkeypatch):
    digits_config |= extra
    per_update = run_simulation(load_config(digits_config | {"backend": {"workers": 2}}))

    def no_updates(*_):
        raise AssertionError("a summed run asked the workers for every update")

    monkeypatch.setattr(WorkerBackend, "run", no_updates)
    summed = run_simulation(load_config(digits_config | {"backend": {"workers": 2, "sum_updates": True}}))
    for ours, theirs in zip(summed.model.parameters(), per_update.model.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(summed.history, per_update.history, strict=True):
        assert {k: ours[k] for k in COUNTED if k in ours} == {k: theirs[k] for k in COUNTED if k in theirs}
        assert ours["test_accuracy"] == pytest.approx(theirs["test_accuracy"], abs=0.01)
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)
    assert summed.summary["participation"] == per_update.summary["participation"]
    if "validation" in extra:
        assert summed.history[-1]["updates_rejected"] > 0


def test_a_summed_run_keeps_the_rejection_reasons(digits_config, tmp_path):
    digits_config |= {"validation": {"max_norm_ratio": 1.05}}
    for name, summed in (("per-update", False), ("summed", True)):
        run_simulation(load_config(digits_config | {"backend": {"workers": 2, "sum_updates": summed}}),
                       out_dir=tmp_path / name)
    reasons = [(tmp_path / name / "rejections.jsonl").read_text() for name in ("per-update", "summed")]
    assert reasons[0] and reasons[0] == reasons[1]


class NaNFromRoundThree(FedAvg):
    """A FedAvg subclass with its own aggregate: the summed path must not bypass it."""

    def aggregate(self, global_params, updates):
        if updates[0].base_version >= 2:
            return torch.full_like(global_params, math.nan)
        return super().aggregate(global_params, updates)


class RefusingClientTwo(FedAvg):
    def check_update(self, update):
        return "client 2 is refused" if update.client_id == 2 else None


@pytest.mark.parametrize("strategy", [NaNFromRoundThree, RefusingClientTwo])
def test_a_fedavg_subclass_with_its_own_rule_is_never_summed(digits_config, strategy):
    runs = [run_simulation(load_config(digits_config | {"backend": {"workers": 2, "sum_updates": summed}}),
                           strategy=strategy())
            for summed in (False, True)]
    assert strategy().sample_mean_lr() is None
    assert [r["updates_rejected"] for r in runs[1].history] == [r["updates_rejected"] for r in runs[0].history]
    assert runs[1].history[-1]["updates_rejected"] > 0


@pytest.mark.parametrize("aggregator", [{"name": "median"}, {"name": "mean", "clip_norm": 1.0}])
def test_a_robust_aggregator_takes_the_per_update_path(digits_config, aggregator, monkeypatch):
    def no_sums(*_):
        raise AssertionError("a robust aggregator was fed worker sums")

    monkeypatch.setattr(WorkerBackend, "train_held", no_sums)
    run_simulation(load_config(digits_config | {"aggregator": aggregator,
                                                "backend": {"workers": 2, "sum_updates": True}}))


def test_only_a_sample_weighted_mean_can_be_summed():
    assert FedAvg(server_lr=0.5).sample_mean_lr() == 0.5
    assert FedProx(mu=0.1).sample_mean_lr() == 1.0
    assert FedNova().sample_mean_lr() is None
    robust = FedAvg()
    robust.combiner = lambda vectors, weights: vectors[0]
    assert robust.sample_mean_lr() is None


def test_a_round_whose_every_task_was_dropped_trains_nothing():
    model, clients, _ = tasks_and_data()
    with WorkerBackend(LocalTrainer(model), clients, workers=2) as backend:
        assert backend.train_held([], checks_for(clients)) == []
