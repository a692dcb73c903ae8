"""The genetic planner (US20230206075A1, HeterPS): evolve layer → device-type schemes.

Each individual is a scheme (a device-type gene per layer) and a stage-boundary gene per
layer boundary: consecutive layers on one type merge into a stage, as in the patent,
unless their boundary gene is set, which splits them into two stages on that type. The
fitness is the cost model's ``(violation, cost)`` of the stages (lower is better, feasible
before infeasible). Every generation keeps the elite, fills the rest with children of
tournament-selected parents (two-point crossover of both gene kinds) and mutates them:
type genes change with probability 1/L each, then one operator acts on the stage
structure: shifting a stage boundary, re-typing a whole stage, or flipping one boundary
gene (splitting a stage on its type, or joining two stages on one type).
By default a few schemes per generation are then hill-climbed (a memetic step): the
plain patent algorithm stalls in local optima where the cheaper plan needs two
coordinated changes, e.g. a one-layer CPU stage that splits a GPU run in two.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

from fedfleet.placement.cost import PlacementProblem, Run, merge_stages, splits_from_runs
from fedfleet.placement.planners.base import Planner

Score = tuple[float, float]
Scheme = tuple[int, ...]
Genome = tuple[Scheme, tuple[int, ...]]  # types per layer, layers whose boundary gene is set


def genome(types: list[int] | Scheme, splits: set[int] | tuple[int, ...]) -> Genome:
    """The canonical genome: boundary genes kept only between layers of one type."""
    kept = (layer for layer in splits if 0 < layer < len(types) and types[layer] == types[layer - 1])
    return tuple(types), tuple(sorted(kept))


def genome_of_runs(runs: list[Run]) -> Genome:
    """The genome whose stages are ``runs``."""
    return tuple(device for first, end, device in runs for _ in range(first, end)), splits_from_runs(runs)


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
        merged with or kept apart from a neighbour of its new type, split a stage in the
        middle on its type, join two stages on one type, or give one layer another type)
        before the next generation; False gives the genetic algorithm alone.
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

    def _search(self, problem: PlacementProblem) -> list[Run] | None:
        rng = random.Random(self.random_state)
        types = problem.num_types
        cache: dict[Genome, Score] = {}
        climbed: set[Genome] = set()

        def fitness(individual: Genome) -> Score:
            if individual not in cache:
                cache[individual] = problem.score_runs(merge_stages(*individual))
            return cache[individual]

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
                child = self._mutate(*self._crossover(first, second, rng), types, rng)
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
        return merge_stages(*members[min(range(len(members)), key=scores.__getitem__)])

    @staticmethod
    def _neighbours(individual: Genome, types: int) -> Iterator[Genome]:
        """Boundary moves by one layer, whole-stage re-types, splits and joins, then single-layer re-types."""
        scheme, splits = individual
        runs = merge_stages(scheme, splits)
        for position, (first, end, device) in enumerate(runs):
            if first > 0:
                yield genome_of_runs(_moved(runs, position, first + 1))
                yield genome_of_runs(_moved(runs, position, first - 1))
                if first in splits:  # join with the stage before, on the same type
                    yield scheme, tuple(layer for layer in splits if layer != first)
            for other in range(types):
                if other != device:
                    retyped = (*scheme[:first], *(other,) * (end - first), *scheme[end:])
                    merged, kept = genome(retyped, splits), genome(retyped, {*splits, first, end})
                    yield merged
                    if kept != merged:  # on a neighbour's type: also keep the stage apart from it
                        yield kept
            if end - first > 1:  # split the stage in the middle on its type (boundary moves tune it)
                yield scheme, tuple(sorted({*splits, (first + end) // 2}))
        for layer in range(len(scheme)):
            for other in range(types):
                if other != scheme[layer]:
                    yield genome((*scheme[:layer], other, *scheme[layer + 1 :]), splits)

    def _climb(self, individual: Genome, types: int, fitness: Callable[[Genome], Score],
               climbed: set[Genome]) -> Genome:
        """First-improvement hill climb over :meth:`_neighbours` until none is better."""
        current, best = individual, fitness(individual)
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

    def _initial(self, layers: int, types: int, rng: random.Random) -> list[Genome]:
        """Every single-type scheme, then random schemes of a few contiguous stages (types may repeat)."""
        members: list[Genome] = [((t,) * layers, ()) for t in range(types)]
        most_runs = max(2, math.isqrt(layers))
        while len(members) < self.population:
            cuts = sorted(rng.sample(range(1, layers), min(rng.randint(1, most_runs) - 1, layers - 1)))
            scheme: list[int] = []
            for start, end in zip([0, *cuts], [*cuts, layers], strict=True):
                scheme += [rng.randrange(types)] * (end - start)
            members.append(genome(scheme, set(cuts)))
        return members[: self.population]

    def _select(self, scores: list[Score], rng: random.Random) -> int:
        drawn = [rng.randrange(len(scores)) for _ in range(self.tournament)]
        return min(drawn, key=scores.__getitem__)

    def _crossover(self, first: Genome, second: Genome, rng: random.Random) -> tuple[list[int], set[int]]:
        """Two-point crossover of both gene kinds: layers and boundaries in [start, end) from ``second``."""
        child, splits = list(first[0]), set(first[1])
        if rng.random() < self.crossover_rate:
            start, end = sorted((rng.randrange(len(child) + 1), rng.randrange(len(child) + 1)))
            child[start:end] = second[0][start:end]
            splits = {layer for layer in splits if not start <= layer < end}
            splits |= {layer for layer in second[1] if start <= layer < end}
        return child, splits

    def _mutate(self, scheme: list[int], splits: set[int], types: int, rng: random.Random) -> Genome:
        layers = len(scheme)
        rate = 1.0 / layers if self.mutation_rate is None else self.mutation_rate
        for layer in range(layers):
            if rng.random() < rate:
                scheme[layer] = rng.randrange(types)
        individual = genome(scheme, splits)
        runs = merge_stages(*individual)
        operator = rng.randrange(3)
        if operator == 0 and len(runs) > 1:  # shift a stage boundary by up to three layers
            position = rng.randrange(1, len(runs))
            shift = rng.randint(1, 3) * (1 if rng.random() < 0.5 else -1)
            return genome_of_runs(_moved(runs, position, runs[position][0] + shift))
        if operator == 1:  # re-type a whole stage (it may merge with a neighbour)
            first, end, _ = runs[rng.randrange(len(runs))]
            scheme[first:end] = [rng.randrange(types)] * (end - first)
            return genome(scheme, individual[1])
        if operator == 2 and layers > 1:  # flip one boundary gene: split a stage or join two on one type
            return genome(scheme, set(individual[1]) ^ {rng.randrange(1, layers)})
        return individual


def _moved(runs: list[Run], position: int, boundary: int) -> list[Run]:
    """``runs`` with the start of stage ``position`` moved to layer ``boundary``.

    Stages the move empties disappear; the layers between the old and the new boundary
    join the stage on the other side of it.
    """
    boundary = min(max(boundary, 0), runs[-1][1])
    before = [(first, min(end, boundary), device) for first, end, device in runs[:position] if first < boundary]
    after = [(max(first, boundary), end, device) for first, end, device in runs[position:] if end > boundary]
    if before:
        before[-1] = (before[-1][0], boundary, before[-1][2])
    if after:
        after[0] = (boundary, after[0][1], after[0][2])
    return before + after
