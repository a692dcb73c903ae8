"""Genetic search over a job's device sets, with the round cost as fitness (lower is fitter)."""

from __future__ import annotations

import numpy as np

from fedfleet.fl.scheduling.cost import PlanningProblem
from fedfleet.fl.scheduling.heuristics import StatelessPolicy, fastest, random_set


class GeneticPolicy(StatelessPolicy):
    """Evolve ``population`` device sets for ``generations``; return the cheapest set seen.

    The first population is the ``k`` fastest candidates plus random sets. Each generation
    keeps the ``elite`` cheapest sets, and breeds the rest from parents picked by binary
    tournaments: a child draws its ``k`` devices from the union of its parents and, with
    probability ``mutation``, swaps one of them for a candidate outside the set.

    Parameters
    ----------
    population, generations, elite : int
    mutation : float
    """

    name = "genetic"

    def __init__(self, population: int = 24, generations: int = 30, mutation: float = 0.3, elite: int = 2) -> None:
        self.population = population
        self.generations = generations
        self.mutation = mutation
        self.elite = min(elite, population)

    def plan(self, problem: PlanningProblem, rng: np.random.Generator) -> np.ndarray:
        if problem.k == len(problem.candidates):
            return np.sort(problem.candidates)
        sets = np.stack([fastest(problem, problem.k)] + [random_set(problem, rng)
                                                        for _ in range(self.population - 1)])
        costs = problem.costs(sets)
        best, best_cost = sets[np.argmin(costs)], float(costs.min())
        for _ in range(self.generations):
            order = np.argsort(costs, kind="stable")
            children = [sets[i] for i in order[:self.elite]]
            while len(children) < self.population:
                mother, father = (sets[self._tournament(costs, rng)] for _ in range(2))
                children.append(self._mutate(self._cross(mother, father, problem.k, rng), problem, rng))
            sets = np.stack(children)
            costs = problem.costs(sets)
            if costs.min() < best_cost:
                best, best_cost = sets[np.argmin(costs)], float(costs.min())
        return np.sort(best)

    @staticmethod
    def _tournament(costs: np.ndarray, rng: np.random.Generator) -> int:
        a, b = rng.integers(len(costs), size=2)
        return int(a if costs[a] <= costs[b] else b)

    @staticmethod
    def _cross(mother: np.ndarray, father: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        pool = np.union1d(mother, father)
        return np.sort(rng.choice(pool, size=k, replace=False))

    def _mutate(self, child: np.ndarray, problem: PlanningProblem, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.mutation:
            return child
        outside = np.setdiff1d(problem.candidates, child)
        mutated = child.copy()
        mutated[rng.integers(len(child))] = rng.choice(outside)
        return np.sort(mutated)
