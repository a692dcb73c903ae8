"""Shared fixtures: a seconds-long digits configuration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fedfleet.threads import torch_threads


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    """The suite's models are tiny: one intra-op thread is much faster than several on a busy machine."""
    with torch_threads(1):
        yield


@pytest.fixture
def digits_config() -> dict[str, Any]:
    """A tiny synchronous job on scikit-learn's digits (runs in about a second)."""
    return {
        "name": "digits-test",
        "seed": 0,
        "data": {"dataset": "digits", "num_clients": 8, "partition": "dirichlet", "alpha": 0.5},
        "model": {"name": "mlp"},
        "train": {"rounds": 4, "clients_per_round": 4, "batch_size": 16, "lr": 0.1},
        "checkpoint_every": 2,
    }
