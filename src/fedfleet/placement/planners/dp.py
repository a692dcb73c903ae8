"""Optimal contiguous stage partition by dynamic programming.

The cost of a plan, ``samples / Θ × Σ rental``, couples stages only through the pipeline
throughput Θ (its slowest stage or link). For a fixed floor θ on every stage and link,
the least total rental is a shortest path over layer boundaries with the last stage's
type as state. The optimum's Θ is one of the finitely many stage/link throughputs, so
solving for each candidate floor, from the fastest down, and stopping once
``samples × R_min / θ`` exceeds the best cost found, gives the exact optimum.

Instance counts shared by non-adjacent stages of one type are not part of the state: a
plan breaking them is skipped, and ``certified_`` is False when the relaxed optimum was
such a plan (the result is then feasible but not proven optimal).
"""

from __future__ import annotations

import numpy as np

from fedfleet.placement.cost import PlacementProblem, Run, scheme_from_runs
from fedfleet.placement.planners.base import Planner


def least_rental_partition(problem: PlacementProblem, floor: float) -> tuple[float, list[Run]]:
    """The contiguous partition of least Σ rental whose stages and links all reach ``floor``.

    Returns ``(inf, [])`` when none exists. Consecutive stages have different types
    (same-type neighbours would have merged into one stage).
    """
    size, types = problem.num_layers + 1, problem.num_types
    allowed = (problem.instances > 0) & (problem.stage_throughput >= floor)
    rental = np.where(allowed, problem.rental, np.inf)  # (L+1, L+1, T)
    link_ok = problem.link_throughput >= floor  # (L+1, T, T)
    link_ok[:, np.arange(types), np.arange(types)] = False
    best = np.full((size, types), np.inf)  # best[j, t]: layers [0, j) with a last stage on t
    entry = np.full((size, types), np.inf)  # entry[i, t]: cheapest prefix a stage on t may follow
    entry[0] = 0.0
    stage_start = np.zeros((size, types), dtype=np.int64)
    before = np.zeros((size, types), dtype=np.int64)  # type of the stage ending at i
    columns = np.arange(types)
    for end in range(1, size):
        totals = rental[:end, end, :] + entry[:end]  # (end, T): start i, type t
        start = totals.argmin(axis=0)
        best[end] = totals[start, columns]
        stage_start[end] = start
        if end < size - 1:
            options = np.where(link_ok[end], best[end][:, None], np.inf)  # (from a, to t)
            entry[end] = options.min(axis=0)
            before[end] = options.argmin(axis=0)
    device = int(best[-1].argmin())
    if not np.isfinite(best[-1, device]):
        return np.inf, []
    runs: list[Run] = []
    end = size - 1
    while end > 0:
        start = int(stage_start[end, device])
        runs.append((start, end, device))
        device, end = int(before[start, device]), start
    return float(best[-1].min()), runs[::-1]


class DynamicProgrammingPlanner(Planner):
    """Exact least-cost plan by DP over stage boundaries for each throughput floor.

    Attributes
    ----------
    lower_bound_ : float
        Least cost over plans that ignore shared instance counts (≤ any feasible cost).
    certified_ : bool
        True when ``plan_.cost`` equals ``lower_bound_``, i.e. the plan is optimal.
    floors_solved_ : int
        Throughput floors for which the partition DP ran.
    """

    def _search(self, problem: PlacementProblem) -> np.ndarray | None:
        target = problem.job.throughput_target
        least, _ = least_rental_partition(problem, target)
        self.lower_bound_, self.certified_, self.floors_solved_ = np.inf, False, 1
        if not np.isfinite(least):
            return None
        stage = problem.stage_throughput[problem.instances > 0]
        links = problem.link_throughput[np.isfinite(problem.link_throughput)]
        floors = np.unique(np.concatenate((stage, links)))
        floors = floors[floors >= target][::-1]
        best_cost, best_runs = np.inf, None
        samples_hours = problem.job.samples / 3600.0
        for floor in floors:
            bound = samples_hours * least / floor
            if bound >= best_cost:
                self.lower_bound_ = min(self.lower_bound_, bound)
                break
            rental, runs = least_rental_partition(problem, floor)
            self.floors_solved_ += 1
            if not runs:
                continue
            violation, cost = problem.score_runs(runs)
            relaxed = samples_hours * rental / self._throughput(problem, runs)
            self.lower_bound_ = min(self.lower_bound_, relaxed)
            if violation == 0 and cost < best_cost:
                best_cost, best_runs = cost, runs
        self.evaluations_ = self.floors_solved_
        if best_runs is None:
            return None
        self.certified_ = bool(best_cost <= self.lower_bound_ * (1 + 1e-9))
        return scheme_from_runs(best_runs, problem.num_layers)

    @staticmethod
    def _throughput(problem: PlacementProblem, runs: list[Run]) -> float:
        stage = min(problem.stage_throughput[f, e, t] for f, e, t in runs)
        links = [problem.link_throughput[f, runs[n][2], t] for n, (f, _, t) in enumerate(runs[1:])]
        return float(min([stage, *links]))
