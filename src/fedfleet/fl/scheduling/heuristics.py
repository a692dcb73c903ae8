"""Baseline policies: random, greedy (fastest idle devices) and FedCS (as many as fit a deadline)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fedfleet.fl.scheduling.cost import PlanningProblem


class StatelessPolicy:
    """A policy with nothing to checkpoint."""

    name = "stateless"

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state


def fastest(problem: PlanningProblem, k: int) -> np.ndarray:
    """The ``k`` candidates with the shortest expected time for the job (ties by id)."""
    order = np.argsort(problem.times[problem.candidates], kind="stable")
    return np.sort(problem.candidates[order[:k]])


def random_set(problem: PlanningProblem, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(problem.candidates, size=problem.k, replace=False))


class RandomPolicy(StatelessPolicy):
    """``k`` candidates uniformly at random (FedAvg's selection)."""

    name = "random"

    def plan(self, problem: PlanningProblem, rng: np.random.Generator) -> np.ndarray:
        return random_set(problem, rng)


class GreedyPolicy(StatelessPolicy):
    """The ``k`` fastest idle candidates: the shortest round now, whatever fairness."""

    name = "greedy"

    def plan(self, problem: PlanningProblem, rng: np.random.Generator) -> np.ndarray:
        del rng
        return fastest(problem, problem.k)


class FedCSPolicy(StatelessPolicy):
    """FedCS (Nishio & Yonetani, 2019): as many devices as finish within a deadline, up to ``k``.

    Among the candidates expected to finish by the deadline, ``k`` at random (all of them when
    fewer fit; the fastest one when none does).

    Parameters
    ----------
    deadline_s : float or None
        Round deadline; None takes the median expected time of the candidates for the job.
    """

    name = "fedcs"

    def __init__(self, deadline_s: float | None = None) -> None:
        self.deadline_s = deadline_s

    def plan(self, problem: PlanningProblem, rng: np.random.Generator) -> np.ndarray:
        times = problem.times[problem.candidates]
        deadline = self.deadline_s if self.deadline_s is not None else float(np.median(times))
        fitting = problem.candidates[times <= deadline]
        if len(fitting) == 0:
            return fastest(problem, 1)
        return np.sort(rng.choice(fitting, size=min(problem.k, len(fitting)), replace=False))
