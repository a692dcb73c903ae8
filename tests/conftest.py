"""Shared fixtures: a seconds-long digits configuration."""

from __future__ import annotations

from typing import Any

import pytest


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
