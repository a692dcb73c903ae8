"""The cost of a job's round on a device set, ``alpha * T + beta * F``, and Jain's fairness index.

``T`` is the round's time: the slowest chosen device's expected update time for *that* job
(its own model size and data). ``F`` is the fairness term: the population variance over all
devices of how often each has served the job, as a frequency (rounds served / rounds so far,
counting the round being planned), so it stays in [0, 0.25] whatever the round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlanningProblem:
    """What a scheduling policy sees when it picks a job's devices for one round.

    Attributes
    ----------
    job : int
        The job's index in the config's ``jobs`` list.
    round_index : int
        The round being planned, from 1.
    candidates : numpy.ndarray
        (c,) ids of the devices that are idle, online and answered, sorted.
    k : int
        Devices the job asks for (``train.clients_per_round``), at most ``c``.
    times : numpy.ndarray
        (num_devices,) expected seconds of one update of this job on each device.
    counts : numpy.ndarray
        (num_devices,) rounds each device has served this job so far.
    alpha, beta : float
        Weights of time and fairness in the cost.
    """

    job: int
    round_index: int
    candidates: np.ndarray
    k: int
    times: np.ndarray
    counts: np.ndarray
    alpha: float
    beta: float

    def cost(self, chosen: np.ndarray) -> float:
        """The cost of one device set (any size)."""
        return round_cost(self.times, self.counts, self.round_index, chosen, self.alpha, self.beta)

    def costs(self, sets: np.ndarray) -> np.ndarray:
        """(n,) costs of ``sets``, an (n, k) array of distinct device ids per row."""
        return round_costs(self.times, self.counts, self.round_index, sets, self.alpha, self.beta)


def fairness_variance(counts: np.ndarray, round_index: int, chosen: np.ndarray) -> float:
    """Variance over devices of the frequency each serves the job after this round's ``chosen``."""
    served = counts.astype(np.float64).copy()
    served[np.asarray(chosen, dtype=np.int64)] += 1
    return float(np.var(served / round_index))


def round_cost(times: np.ndarray, counts: np.ndarray, round_index: int, chosen: np.ndarray,
               alpha: float, beta: float) -> float:
    """``alpha * max(times[chosen]) + beta * fairness_variance(...)``; see the module docstring."""
    chosen = np.asarray(chosen, dtype=np.int64)
    slowest = float(times[chosen].max()) if len(chosen) else 0.0
    return alpha * slowest + beta * fairness_variance(counts, round_index, chosen)


def round_costs(times: np.ndarray, counts: np.ndarray, round_index: int, sets: np.ndarray,
                alpha: float, beta: float) -> np.ndarray:
    """:func:`round_cost` of each row of ``sets`` ((n, k) distinct ids), without copying counts per row.

    ``var(s) = mean(s**2) - mean(s)**2`` with ``s = served / r``; adding one round to device j
    raises ``sum(served**2)`` by ``2 * counts[j] + 1``.
    """
    sets = np.asarray(sets, dtype=np.int64)
    n, r = len(counts), float(round_index)
    c = counts.astype(np.float64)
    total = (c.sum() + sets.shape[1]) / r
    squares = ((c ** 2).sum() + (2 * c[sets] + 1).sum(axis=1)) / r ** 2
    variance = np.maximum(squares / n - (total / n) ** 2, 0.0)
    return alpha * times[sets].max(axis=1) + beta * variance


def jain_index(values: np.ndarray) -> float:
    """Jain's fairness index ``(sum x)^2 / (n * sum x^2)``: 1 when all equal, 1/n when one holds all.

    All zeros count as perfectly fair (1.0).
    """
    x = np.asarray(values, dtype=np.float64)
    squares = float((x ** 2).sum())
    return 1.0 if squares == 0 else float(x.sum() ** 2 / (len(x) * squares))
