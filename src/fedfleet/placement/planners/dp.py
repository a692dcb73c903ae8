"""Optimal contiguous stage partition by dynamic programming.

The cost of a plan, ``samples / Θ × Σ rental``, couples stages only through the pipeline
throughput Θ (its slowest stage or link). For a fixed floor θ on every stage and link,
the least total rental R(θ) is a shortest path over layer boundaries with the last
stage's type as state (:mod:`fedfleet.placement.partition`). The optimum's Θ is one of
the finitely many stage/link throughputs, and the plan found at that floor costs no more
than it, so the optimum is the best plan over all candidate floors. Floors are searched
by branch and bound: every plan whose Θ lies in a run of floors [θ_lo, θ_hi] costs at
least ``samples × R(θ_lo) / θ_hi``, and runs whose bound cannot beat the best plan found
are dropped unsolved (typically a few dozen of thousands of floors are solved).

Instance counts shared by the stages of one type are enforced exactly: when the
least-rental partition at a floor breaks a type's count, that type's used instances join
the DP state (for this and every later floor) and the floor is solved again.
"""

from __future__ import annotations

import heapq

import numpy as np

from fedfleet.placement.cost import PlacementProblem, Run
from fedfleet.placement.partition import count_respecting_partition
from fedfleet.placement.planners.base import Planner


class DynamicProgrammingPlanner(Planner):
    """Exact least-cost plan by DP over stage boundaries for each throughput floor.

    Attributes
    ----------
    floors_solved_ : int
        Throughput floors for which the partition DP ran (also ``evaluations_``).
    tracked_types_ : tuple of str
        Device types whose shared instance count had to join the DP state (empty when
        no count binds).
    """

    tracked_types_: tuple[str, ...]

    def _search(self, problem: PlacementProblem) -> list[Run] | None:
        target = problem.job.throughput_target
        samples_hours = problem.job.samples / 3600.0
        stage = problem.stage_throughput[problem.instances > 0]
        links = problem.link_throughput[np.isfinite(problem.link_throughput)]
        floors = np.unique(np.concatenate((stage, links)))
        floors = floors[np.isfinite(floors) & (floors >= target)][::-1]  # fastest first; Θ* is one
        self.floors_solved_, self.tracked_types_ = 0, ()
        tracked: tuple[int, ...] = ()
        rentals: dict[int, float] = {}
        best_cost, best_runs = np.inf, None

        def solve(index: int) -> float:
            """Least rental of a count-respecting plan whose stages and links reach floors[index]."""
            nonlocal tracked, best_cost, best_runs
            rental, runs, tracked = count_respecting_partition(problem, float(floors[index]), tracked)
            self.floors_solved_ += 1
            if runs:
                violation, cost = problem.score_runs(runs)
                if violation == 0 and cost < best_cost:
                    best_cost, best_runs = cost, runs
            rentals[index] = rental
            return rental

        if not floors.size or not np.isfinite(solve(len(floors) - 1)):
            return None  # no plan within every count reaches the target
        # Branch and bound over runs of floors [high, low]: a plan whose Θ lies among them
        # is admissible at floors[low], so it rents at least R(floors[low]) and costs at least
        # samples x R(floors[low]) / floors[high]; runs that cannot beat the best plan are dropped.
        pending = [(0.0, 0, len(floors) - 1)]
        while pending:
            bound, high, low = heapq.heappop(pending)
            if bound >= best_cost * (1 - 1e-12) or high == low:
                continue
            middle = (high + low) // 2
            for part_high, part_low in ((high, middle), (middle + 1, low)):
                rental = rentals[part_low] if part_low in rentals else solve(part_low)
                part_bound = samples_hours * rental / floors[part_high]
                if part_bound < best_cost:
                    heapq.heappush(pending, (part_bound, part_high, part_low))
        self.evaluations_ = self.floors_solved_
        self.tracked_types_ = tuple(problem.catalog.names[t] for t in tracked)
        return best_runs
