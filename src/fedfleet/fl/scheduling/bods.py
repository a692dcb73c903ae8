"""BODS: Bayesian optimisation of a job's device set, a Gaussian process over sets with expected improvement."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel

from fedfleet.fl.scheduling.cost import PlanningProblem
from fedfleet.fl.scheduling.heuristics import StatelessPolicy, fastest, random_set


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float) -> np.ndarray:
    """EI of minimising: ``E[max(best - xi - f, 0)]`` for ``f ~ N(mean, std^2)``; 0 where std is 0."""
    gain = best - xi - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, gain / std, 0.0)
    return np.where(std > 0, gain * norm.cdf(z) + std * norm.pdf(z), np.maximum(gain, 0.0))


class BodsPolicy(StatelessPolicy):
    """Per planning call: evaluate ``initial`` sets, then ``iterations`` sets of highest expected improvement.

    A device set is encoded as a 0/1 vector over the candidates; a scikit-learn
    :class:`~sklearn.gaussian_process.GaussianProcessRegressor` (Matern 5/2 plus noise, targets
    normalised; hyperparameters fitted on the first fit of each call and then kept) models the
    cost over these vectors. Each iteration scores a pool of unseen sets
    (random ones and single-device swaps of the cheapest so far) by expected improvement and
    evaluates the best-scoring one. Returns the cheapest set evaluated.

    Parameters
    ----------
    initial, iterations, pool : int
    xi : float
        Exploration margin, as a share of the spread of the costs seen.
    """

    name = "bods"

    def __init__(self, initial: int = 10, iterations: int = 20, pool: int = 200, xi: float = 0.01) -> None:
        self.initial = initial
        self.iterations = iterations
        self.pool = pool
        self.xi = xi

    def plan(self, problem: PlanningProblem, rng: np.random.Generator) -> np.ndarray:
        if problem.k == len(problem.candidates):
            return np.sort(problem.candidates)
        seen: dict[tuple[int, ...], float] = {}
        for chosen in [fastest(problem, problem.k)] + [random_set(problem, rng) for _ in range(self.initial - 1)]:
            seen.setdefault(set_key(chosen), problem.cost(chosen))
        column = {int(d): i for i, d in enumerate(problem.candidates)}
        kernel: Kernel = ConstantKernel(1.0) * Matern(length_scale=np.sqrt(problem.k), nu=2.5) + WhiteKernel(1e-3)
        optimizer: str | None = "fmin_l_bfgs_b"
        for _ in range(self.iterations):
            keys = list(seen)
            costs = np.array([seen[key] for key in keys])
            pool = [key for key in self._pool(problem, min(seen, key=seen.__getitem__), rng) if key not in seen]
            if not pool:
                break
            gp = GaussianProcessRegressor(kernel, normalize_y=True, optimizer=optimizer)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gp.fit(self._encode(keys, column, len(problem.candidates)), costs)
            kernel, optimizer = gp.kernel_, None  # hyperparameters fitted once per call, then kept
            mean, std = gp.predict(self._encode(pool, column, len(problem.candidates)), return_std=True)
            spread = float(costs.max() - costs.min()) or 1.0
            score = expected_improvement(mean, std, float(costs.min()), self.xi * spread)
            pick = pool[int(np.argmax(score))]
            seen[pick] = problem.cost(np.array(pick))
        return np.array(min(seen, key=seen.__getitem__), dtype=np.int64)

    def _pool(self, problem: PlanningProblem, best: tuple[int, ...], rng: np.random.Generator,
              ) -> list[tuple[int, ...]]:
        """Half random sets, half single swaps of ``best`` (deduplicated, in draw order)."""
        outside = np.setdiff1d(problem.candidates, best)
        swaps = []
        for _ in range(self.pool - self.pool // 2):
            swapped = np.array(best)
            swapped[rng.integers(len(best))] = rng.choice(outside)
            swaps.append(set_key(swapped))
        randoms = [set_key(random_set(problem, rng)) for _ in range(self.pool // 2)]
        return list(dict.fromkeys(swaps + randoms))

    @staticmethod
    def _encode(sets: list[tuple[int, ...]], column: dict[int, int], width: int) -> np.ndarray:
        encoded = np.zeros((len(sets), width))
        for row, chosen in enumerate(sets):
            encoded[row, [column[d] for d in chosen]] = 1.0
        return encoded


def set_key(chosen: np.ndarray) -> tuple[int, ...]:
    """A device set as a hashable, sorted tuple of ints."""
    return tuple(int(v) for v in np.sort(chosen))
