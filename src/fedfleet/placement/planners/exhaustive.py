"""Exhaustive search over every stage plan: the exact optimum for small instances."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from fedfleet.errors import ConfigError
from fedfleet.placement.cost import PlacementProblem, Run
from fedfleet.placement.planners.base import Planner


def all_stage_plans(num_layers: int, num_types: int) -> Iterator[list[Run]]:
    """Every split of the layers into contiguous stages, with every type for each stage.

    Neighbouring stages may share a type (a same-type split), so there are
    ``T·(T+1)**(L-1)`` plans: each of the ``2**(L-1)`` sets of stage boundaries, times
    ``T**stages`` type choices. Built from the boundaries directly, not from
    :func:`~fedfleet.placement.cost.merge_stages`.
    """
    for cuts in itertools.product((False, True), repeat=num_layers - 1):
        starts = [0, *(layer for layer, cut in enumerate(cuts, start=1) if cut)]
        bounds = list(itertools.pairwise([*starts, num_layers]))
        for types in itertools.product(range(num_types), repeat=len(bounds)):
            yield [(first, end, device) for (first, end), device in zip(bounds, types, strict=True)]


class BruteForcePlanner(Planner):
    """Cost all ``T·(T+1)**(L-1)`` stage plans and keep the cheapest feasible one.

    Parameters
    ----------
    max_schemes : int
        Refuse problems with more stage plans than this (a one-line error, not a long wait).
    """

    def __init__(self, max_schemes: int = 300_000) -> None:
        self.max_schemes = max_schemes

    def _search(self, problem: PlacementProblem) -> list[Run] | None:
        layers, types = problem.num_layers, problem.num_types
        total = types * (types + 1) ** (layers - 1)
        if total > self.max_schemes:
            raise ConfigError(
                f"brute force would cost {total:.3g} stage plans ({types} types x {types + 1} ^ "
                f"{layers - 1} boundaries), over max_schemes={self.max_schemes}; use --planner dp or genetic"
            )
        best_cost, best_runs = np.inf, None
        for runs in all_stage_plans(layers, types):
            violation, cost = problem.score_runs(runs)
            if violation == 0 and cost < best_cost:
                best_cost, best_runs = cost, runs
        self.evaluations_ = total
        return best_runs
