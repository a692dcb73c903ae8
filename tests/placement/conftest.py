"""Hand-made and random placement problems shared by the placement tests (as factories)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fedfleet.placement import LayerProfile, ModelProfile, PlacementProblem
from fedfleet.placement.catalog import build_catalog
from fedfleet.placement.synthetic import random_catalog, random_profile, with_reachable_target

# Two layers whose costs are easy to work out by hand (see test_cost.py).
TWO_LAYERS = ModelProfile("two", (
    LayerProfile(name="a", flops=1e7, param_bytes=1e6, activation_bytes=1e4),
    LayerProfile(name="b", flops=1e8, param_bytes=1e6, activation_bytes=10),
))


def two_type_catalog(gpu_count: int = 2, **job: Any) -> dict[str, Any]:
    """CPU at 1 GFLOP/s (price 1) and GPU at 10 GFLOP/s (price 5), a 0.8 Gbit/s link."""
    return {
        "job": {"batch_size": 10, "samples": 3.6e6, "throughput_target": 50, "state_factor": 1, **job},
        "devices": [
            {"name": "cpu", "kind": "cpu", "count": 4, "flops": 1e9, "memory_gb": 1,
             "price_per_hour": 1.0, "intra_gbps": 8},
            {"name": "gpu", "kind": "gpu", "count": gpu_count, "flops": 1e10, "memory_gb": 1,
             "price_per_hour": 5.0, "intra_gbps": 8},
        ],
        "links": [{"between": ["cpu", "gpu"], "gbps": 0.8}],
    }


def _two_layer_problem(profile: ModelProfile = TWO_LAYERS, gpu_count: int = 2, **job: Any) -> PlacementProblem:
    return PlacementProblem(profile, build_catalog(two_type_catalog(gpu_count, **job)))


def _random_problem(seed: int, layers: int, types: int) -> PlacementProblem:
    rng = np.random.default_rng(seed)
    profile = random_profile(layers, rng)
    catalog = with_reachable_target(profile, random_catalog(types, rng), rng)
    return PlacementProblem(profile, catalog)


@pytest.fixture
def two_layer_problem() -> Callable[..., PlacementProblem]:
    """``two_layer_problem(profile=TWO_LAYERS, gpu_count=2, **job)``: the hand-computable problem."""
    return _two_layer_problem


@pytest.fixture
def random_problem() -> Callable[[int, int, int], PlacementProblem]:
    """``random_problem(seed, layers, types)``: a seeded random problem."""
    return _random_problem
