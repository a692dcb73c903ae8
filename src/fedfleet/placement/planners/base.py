"""The planner contract: ``fit(problem)`` searches stage plans and sets ``plan_``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

from fedfleet.placement.cost import PlacementProblem, Plan, Run
from fedfleet.placement.diagnose import infeasibility


class Planner(ABC):
    """Chooses stages (layer runs, each on a device type); subclasses implement :meth:`_search`.

    Attributes
    ----------
    plan_ : Plan
        The best feasible plan found by :meth:`fit`.
    evaluations_ : int
        Schemes (or stage tables) the search costed.
    """

    plan_: Plan
    evaluations_: int

    def fit(self, problem: PlacementProblem) -> Self:
        """Search ``problem`` and keep the cheapest feasible plan in ``plan_``.

        Raises
        ------
        PlacementInfeasible
            When the search finds no scheme meeting memory and throughput constraints,
            with the failing constraint and the shortfall (or, when a heuristic search
            missed an existing plan, saying so).
        """
        self.evaluations_ = 0
        runs = self._search(problem)
        if runs is None or problem.score_runs(runs)[0] > 0:
            raise infeasibility(problem, planner=type(self).__name__)
        self.plan_ = problem.plan_runs(runs)
        return self

    @abstractmethod
    def _search(self, problem: PlacementProblem) -> list[Run] | None:
        """The best stage runs ``(first, end, type)`` found, or None."""
