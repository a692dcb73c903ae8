"""Vectorised cohorts: the sequential updates up to float rounding, and a clear fallback where unsupported."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch
from torch import nn

from fedfleet.backends import LocalBackend
from fedfleet.backends.vectorized import VectorizedBackend
from fedfleet.config import load_config
from fedfleet.fl.client import LocalTrainer
from fedfleet.fl.simulation import run_simulation
from fedfleet.models import build_model
from tests.backends.test_workers import assert_same_updates, tasks_and_data


def assert_close_updates(ours, theirs, atol=1e-5):
    for a, b in zip(ours, theirs, strict=True):
        assert (a.client_id, a.num_samples, a.local_steps, a.base_version) == \
            (b.client_id, b.num_samples, b.local_steps, b.base_version)
        assert torch.allclose(a.delta, b.delta, atol=atol, rtol=0), float((a.delta - b.delta).abs().max())
        assert a.metrics["train_loss"] == pytest.approx(b.metrics["train_loss"], rel=1e-5)


def with_plan(tasks, **changes):
    return [dataclasses.replace(t, plan=dataclasses.replace(t.plan, **changes)) for t in tasks]


@pytest.mark.parametrize(("model_name", "epochs", "batch_size"), [("mlp", 1, 16), ("mlp", 3, 7), ("cnn", 2, 16)])
def test_a_vectorised_round_equals_the_sequential_one(model_name, epochs, batch_size):
    model, clients, tasks = tasks_and_data()
    tasks = with_plan(tasks, epochs=epochs, batch_size=batch_size)
    if model_name != "mlp":
        torch.manual_seed(0)
        model = build_model(model_name, (1, 8, 8), 10)
        params = torch.cat([p.detach().flatten() for p in model.parameters()])
        tasks = [dataclasses.replace(t, params=params) for t in tasks]
    assert len({len(clients[t.client_id]) for t in tasks}) > 1  # clients of different sizes: masking matters
    expected = LocalBackend(LocalTrainer(model), clients).run(tasks)
    assert_close_updates(VectorizedBackend(LocalTrainer(model), clients, LocalBackend(LocalTrainer(model),
                                                                                       clients)).run(tasks), expected)


def test_unsupported_plans_and_models_fall_back_to_sequential_and_say_so_once(caplog):
    model, clients, tasks = tasks_and_data()
    momentum = with_plan(tasks, momentum=0.9)
    backend = VectorizedBackend(LocalTrainer(model), clients, LocalBackend(LocalTrainer(model), clients))
    with caplog.at_level(logging.WARNING):
        first, second = backend.run(momentum), backend.run(momentum)
    assert_same_updates(first, LocalBackend(LocalTrainer(model), clients).run(momentum))
    assert_same_updates(second, first)
    assert [r.message for r in caplog.records] == [
        "backend.vectorize: momentum, weight decay and FedProx's term are not vectorised; "
        "these clients train one by one"]
    normed = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.Linear(16, 10))
    assert "buffers" in VectorizedBackend(LocalTrainer(normed), clients, None)._model_reason


def test_a_vectorised_run_matches_the_sequential_run(digits_config):
    sequential = run_simulation(load_config(digits_config | {"backend": {"workers": 1}}))
    vectorised = run_simulation(load_config(digits_config | {"backend": {"vectorize": True}}))
    for ours, theirs in zip(vectorised.model.parameters(), sequential.model.parameters(), strict=True):
        assert torch.allclose(ours, theirs, atol=1e-4, rtol=0)
    assert [r["test_accuracy"] for r in vectorised.history] == [r["test_accuracy"] for r in sequential.history]


def test_a_pruned_model_is_vectorised_too(digits_config):
    digits_config |= {"model": {"name": "cnn"}, "pruning": {"enabled": True, "method": "uniform", "start_round": 1}}
    digits_config["train"].update(rounds=3, lr=0.02)  # two rounds on the pruned model; a stable step size
    sequential = run_simulation(load_config(digits_config | {"backend": {"workers": 1}}))
    vectorised = run_simulation(load_config(digits_config | {"backend": {"vectorize": True}}))
    assert vectorised.summary["params_reduction"] > 0.4
    for ours, theirs in zip(vectorised.model.parameters(), sequential.model.parameters(), strict=True):
        assert ours.shape == theirs.shape and torch.allclose(ours, theirs, atol=1e-5, rtol=0)
