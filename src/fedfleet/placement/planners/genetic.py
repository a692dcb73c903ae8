"""The genetic planner (US20230206075A1, HeterPS): evolve layer → device-type schemes.

Each individual is a scheme; its fitness is the cost model's ``(violation, cost)`` of the
stages it merges into (lower is better, feasible before infeasible). Every generation
keeps the elite, fills the rest with children of tournament-selected parents (two-point
crossover) and mutates them with three operators that act on the stage structure:
re-typing single layers, shifting a stage boundary, and re-typing a whole stage.
By default a few schemes per generation are then hill-climbed (a memetic step): the
plain patent algorithm stalls in local optima where the cheaper plan needs two
coordinated changes, e.g. a one-layer CPU stage that splits a GPU run in two.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

import numpy as np

from fedfleet.placement.cost import PlacementProblem, merge_stages
from fedfleet.placement.planners.base import Planner

Score = tuple[float, float]
Scheme = tuple[int, ...]


class GeneticPlanner(Planner):
    """Genetic search over schemes with elitism.

    Parameters
    ----------
    population : int
        Schemes per generation (the patent's target number of distribution schemes).
    generations : int
        Upper bound on generations.
    patience : int
        Stop after this many generations without a better best scheme.
    crossover_rate : float
        Probability that a child mixes two parents (else it copies the first).
    mutation_rate : float or None
        Per-layer probability of re-typing a layer; None means ``1 / L``.
    elite : int
        Best schemes copied unchanged into the next generation.
    tournament : int
        Schemes drawn per parent selection; the fittest of them is the parent.
    local_search : bool
        Hill-climb the single-type starting schemes, each generation's best scheme and
        ``climbs`` random offspring (move a stage boundary by one layer, re-type a stage,
        or give one layer another type) before the next generation; False gives the
        plain genetic algorithm of the patent.
    climbs : int
        Random offspring hill-climbed per generation when ``local_search`` is on.
    random_state : int or None
        Seed; the same seed gives the same plan.

    Attributes
    ----------
    history_ : list of float
        Best cost after each generation (inf while no feasible scheme is known).
    generations_ : int
        Generations actually run.
    """

    def __init__(
        self,
        population: int = 40,
        generations: int = 400,
        patience: int = 60,
        crossover_rate: float = 0.9,
        mutation_rate: float | None = None,
        elite: int = 2,
        tournament: int = 3,
        local_search: bool = True,
        climbs: int = 5,
        random_state: int | None = None,
    ) -> None:
        self.population = population
        self.generations = generations
        self.patience = patience
        self.crossover_rate = crossover_rate
        self.mutation_rate = mutation_rate
        self.elite = elite
        self.tournament = tournament
        self.local_search = local_search
        self.climbs = climbs
        self.random_state = random_state

    def _search(self, problem: PlacementProblem) -> np.ndarray | None:
        rng = random.Random(self.random_state)
        types = problem.num_types
        cache: dict[Scheme, Score] = {}
        climbed: set[Scheme] = set()

        def fitness(scheme: Scheme) -> Score:
            if scheme not in cache:
                cache[scheme] = problem.score_runs(merge_stages(scheme))
            return cache[scheme]

        members = self._initial(problem.num_layers, types, rng)
        if self.local_search:  # single-type schemes first: often infeasible but one move from good
            members[:types] = [self._climb(s, types, fitness, climbed) for s in members[:types]]
        scores = [fitness(s) for s in members]
        self.history_: list[float] = []
        stale = 0
        for _ in range(self.generations):
            order = sorted(range(len(members)), key=scores.__getitem__)
            best_before = scores[order[0]]
            children = [members[i] for i in order[: self.elite]]
            seen = set(children)
            for _ in range(self.population * 20):  # offspring duplicates are redrawn
                if len(children) >= self.population:
                    break
                first = members[self._select(scores, rng)]
                second = members[self._select(scores, rng)]
                child = self._mutate(self._crossover(first, second, rng), types, rng)
                if child not in seen:
                    seen.add(child)
                    children.append(child)
            members = children
            scores = [fitness(s) for s in members]
            if self.local_search:
                leader = min(range(len(members)), key=scores.__getitem__)
                offspring = range(self.elite, len(members))
                picked = {leader, *rng.sample(offspring, min(self.climbs, len(offspring)))}
                for index in picked:
                    members[index] = self._climb(members[index], types, fitness, climbed)
                    scores[index] = fitness(members[index])
            best = min(scores)
            self.history_.append(best[1])
            stale = stale + 1 if best >= best_before else 0
            if stale >= self.patience:
                break
        self.generations_ = len(self.history_)
        self.evaluations_ = len(cache)
        return np.asarray(members[min(range(len(members)), key=scores.__getitem__)])

    @staticmethod
    def _neighbours(scheme: Scheme, types: int) -> Iterator[Scheme]:
        """Boundary moves by one layer, whole-stage re-types, then single-layer re-types."""
        runs = merge_stages(scheme)
        for first, end, device in runs:
            if first > 0:
                yield (*scheme[:first], scheme[first - 1], *scheme[first + 1 :])
                yield (*scheme[: first - 1], device, *scheme[first:])
            for other in range(types):
                if other != device:
                    yield (*scheme[:first], *(other,) * (end - first), *scheme[end:])
        for layer in range(len(scheme)):
            for other in range(types):
                if other != scheme[layer]:
                    yield (*scheme[:layer], other, *scheme[layer + 1 :])

    def _climb(self, scheme: Scheme, types: int, fitness: Callable[[Scheme], Score],
               climbed: set[Scheme]) -> Scheme:
        """First-improvement hill climb over :meth:`_neighbours` until none is better."""
        current, best = scheme, fitness(scheme)
        improved = current not in climbed
        while improved:
            improved = False
            for candidate in self._neighbours(current, types):
                score = fitness(candidate)
                if score < best:
                    current, best, improved = candidate, score, True
                    break
            climbed.add(current)
        return current

    def _initial(self, layers: int, types: int, rng: random.Random) -> list[Scheme]:
        """Every single-type scheme, then random schemes of a few contiguous runs."""
        members: list[Scheme] = [(t,) * layers for t in range(types)]
        most_runs = max(2, math.isqrt(layers))
        while len(members) < self.population:
            cuts = sorted(rng.sample(range(1, layers), min(rng.randint(1, most_runs) - 1, layers - 1)))
            scheme: list[int] = []
            for start, end in zip([0, *cuts], [*cuts, layers], strict=True):
                scheme += [rng.randrange(types)] * (end - start)
            members.append(tuple(scheme))
        return members[: self.population]

    def _select(self, scores: list[Score], rng: random.Random) -> int:
        drawn = [rng.randrange(len(scores)) for _ in range(self.tournament)]
        return min(drawn, key=scores.__getitem__)

    def _crossover(self, first: Scheme, second: Scheme, rng: random.Random) -> list[int]:
        child = list(first)
        if rng.random() < self.crossover_rate:
            start, end = sorted((rng.randrange(len(first) + 1), rng.randrange(len(first) + 1)))
            child[start:end] = second[start:end]
        return child

    def _mutate(self, scheme: list[int], types: int, rng: random.Random) -> Scheme:
        layers = len(scheme)
        rate = 1.0 / layers if self.mutation_rate is None else self.mutation_rate
        for layer in range(layers):
            if rng.random() < rate:
                scheme[layer] = rng.randrange(types)
        runs = merge_stages(scheme)
        operator = rng.randrange(3)
        if operator == 0 and len(runs) > 1:  # shift a stage boundary by up to three layers
            boundary = runs[rng.randrange(1, len(runs))][0]
            shift = rng.randint(1, 3)
            if rng.random() < 0.5:
                end = min(layers, boundary + shift)
                scheme[boundary:end] = [scheme[boundary - 1]] * (end - boundary)
            else:
                start = max(0, boundary - shift)
                scheme[start:boundary] = [scheme[boundary]] * (boundary - start)
        elif operator == 1:  # re-type a whole stage (it may merge with a neighbour)
            first, end, _ = runs[rng.randrange(len(runs))]
            scheme[first:end] = [rng.randrange(types)] * (end - first)
        return tuple(scheme)
