"""The budget objective: the fastest plan whose rental per hour stays within a budget.

A plan's throughput Θ is one of :attr:`PlacementProblem.rates`. At a floor θ every stage
is provisioned with the fewest instances that reach θ (within memory), so the least
rental R(θ) of a plan whose stages and links all reach θ never falls as θ rises: the
fastest plan within a budget b is the one found at the largest candidate θ with
R(θ) ≤ b, found by bisection over the candidates. For the dp planner R(θ) is the exact
count-respecting least-rental partition, so the result is optimal; any other planner is
run at each probed θ (minimising cost there) and its plan counts when its rental fits.
"""

from __future__ import annotations

from collections.abc import Callable

from fedfleet.errors import ConfigError
from fedfleet.placement.cost import PlacementProblem, Plan
from fedfleet.placement.diagnose import PlacementInfeasible, infeasibility
from fedfleet.placement.partition import count_respecting_partition
from fedfleet.placement.planners.base import Planner
from fedfleet.placement.planners.dp import DynamicProgrammingPlanner


def at_floor(problem: PlacementProblem, floor: float) -> PlacementProblem:
    """The same profile and catalog with ``floor`` as the throughput target."""
    return PlacementProblem(problem.profile, problem.catalog.with_job(throughput_target=floor))


def _plan_within(problem: PlacementProblem, planner: Callable[[], Planner],
                 budget_per_hour: float) -> Plan | None:
    """A plan meeting ``problem``'s target whose rental fits the budget, or None."""
    search = planner()
    if isinstance(search, DynamicProgrammingPlanner):
        rental, runs, _ = count_respecting_partition(problem, problem.job.throughput_target)
        return problem.plan_runs(runs) if runs and rental <= budget_per_hour else None
    try:
        plan = search.fit(problem).plan_
    except PlacementInfeasible:
        return None
    return plan if plan.rental_per_hour <= budget_per_hour else None


def fastest_within_budget(problem: PlacementProblem, planner: Callable[[], Planner],
                          budget_per_hour: float) -> tuple[Plan, PlacementProblem]:
    """The plan of highest throughput (at least the job's target) renting at most ``budget_per_hour``.

    Parameters
    ----------
    problem : PlacementProblem
        Its job's ``throughput_target`` is the least throughput accepted.
    planner : callable
        Builds a fresh planner for each probed floor; the dp planner is exact.
    budget_per_hour : float
        Most Σ instances × price per hour, in the catalog's currency.

    Returns
    -------
    plan, problem : Plan, PlacementProblem
        The plan and the problem (target: its floor) it was costed in.

    Raises
    ------
    PlacementInfeasible
        When no plan reaching the target rents within the budget, with the least rental
        such a plan needs when one exists.
    """
    rates = problem.rates
    low, high = 0, len(rates) - 1
    best: tuple[Plan, PlacementProblem] | None = None
    while low <= high:  # invariant: every candidate above `high` has no plan within budget
        middle = (low + high) // 2
        probed = at_floor(problem, float(rates[middle]))
        plan = _plan_within(probed, planner, budget_per_hour)
        if plan is None:
            high = middle - 1
        else:
            best, low = (plan, probed), middle + 1
    if best is None:
        raise _over_budget(problem, budget_per_hour)
    return best


def _over_budget(problem: PlacementProblem, budget_per_hour: float) -> PlacementInfeasible:
    """Why no plan fits: none meets the target at all, or the cheapest one rents too much."""
    target = problem.job.throughput_target
    try:
        rental, runs, _ = count_respecting_partition(problem, target)
    except ConfigError:  # too many instances to track exactly: say only that none fits
        return PlacementInfeasible(
            f"budget: no plan reaching {target:.4g} samples/s was found within job.budget_per_hour "
            f"{budget_per_hour:.4g}; raise the budget or lower job.throughput_target")
    if not runs:
        return infeasibility(problem)
    return PlacementInfeasible(
        f"budget: the cheapest plan reaching {target:.4g} samples/s rents {rental:.4g} per hour, over "
        f"job.budget_per_hour {budget_per_hour:.4g}; raise the budget or lower job.throughput_target")
