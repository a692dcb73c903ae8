"""The planner contract: ``fit(problem)`` searches schemes and sets ``plan_``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

import numpy as np

from fedfleet.placement.cost import PlacementProblem, Plan
from fedfleet.placement.diagnose import infeasibility


class Planner(ABC):
    """Chooses a device type per layer; subclasses implement :meth:`_search`.

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
        scheme = self._search(problem)
        if scheme is None or problem.score(scheme)[0] > 0:
            raise infeasibility(problem, planner=type(self).__name__)
        self.plan_ = problem.plan(scheme)
        return self

    @abstractmethod
    def _search(self, problem: PlacementProblem) -> np.ndarray | None:
        """The best scheme found (device-type index per layer), or None."""
