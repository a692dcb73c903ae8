"""Exhaustive search over every scheme: the exact optimum for small instances."""

from __future__ import annotations

import itertools

import numpy as np

from fedfleet.errors import ConfigError
from fedfleet.placement.cost import PlacementProblem
from fedfleet.placement.planners.base import Planner


class BruteForcePlanner(Planner):
    """Cost all ``T**L`` schemes and keep the cheapest feasible one.

    Parameters
    ----------
    max_schemes : int
        Refuse problems with more schemes than this (a one-line error, not a long wait).
    """

    def __init__(self, max_schemes: int = 300_000) -> None:
        self.max_schemes = max_schemes

    def _search(self, problem: PlacementProblem) -> np.ndarray | None:
        total = problem.num_types**problem.num_layers
        if total > self.max_schemes:
            raise ConfigError(
                f"brute force would cost {total:.3g} schemes ({problem.num_types} types ^ "
                f"{problem.num_layers} layers), over max_schemes={self.max_schemes}; use --planner dp or genetic"
            )
        best_cost, best_scheme = np.inf, None
        for scheme in itertools.product(range(problem.num_types), repeat=problem.num_layers):
            violation, cost = problem.score(np.asarray(scheme))
            if violation == 0 and cost < best_cost:
                best_cost, best_scheme = cost, scheme
        self.evaluations_ = total
        return None if best_scheme is None else np.asarray(best_scheme)
