"""Least-weight contiguous stage partitions: the dynamic program behind the dp planner.

For a floor θ, a partition of the layers into stages (each on one device type with its
provisioned instances) is *admissible* when every stage and every link between stages
reaches θ samples/s. The admissible partition of least total weight (by default the
rental per hour) is a shortest path over layer boundaries whose state is the last stage's
type. Shared instance counts (Σ instances of a type over all its stages ≤ its count)
couple the stages of one type; the instances used so far of the *tracked* types join the
state, so a partition is count-respecting for those types, and relaxed for the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedfleet.errors import ConfigError
from fedfleet.placement.cost import PlacementProblem, Run

# Largest DP table (boundaries x types x usage states) built before giving up (~32 MB per array).
MAX_STATES = 4_000_000


@dataclass(frozen=True)
class PartitionTables:
    """The filled DP of :func:`solve_partition`.

    ``best[j, t, u]``: least weight of an admissible prefix of layers ``[0, j)`` whose last
    stage is on type t, with tracked usage state u (index 0: no instances used).
    ``entry[j, t, u]``: least weight of such a prefix that a stage on t may follow (link
    ≥ floor; the prefix's last stage may be on t too); ``entry[0, t, 0] = 0``.
    """

    best: np.ndarray  # (L+1, T, U)
    entry: np.ndarray  # (L+1, T, U)
    value: float  # least weight of a whole admissible partition (inf if none)
    runs: list[Run]  # that partition, [] if none


def over_counts(problem: PlacementProblem, runs: Sequence[Run]) -> list[int]:
    """Types whose instances summed over ``runs``' stages exceed the type's count."""
    used = np.zeros(problem.num_types, dtype=np.int64)
    for first, end, device in runs:
        used[device] += problem.instances[first, end, device]
    return [int(t) for t in np.flatnonzero(used > problem.counts)]


def solve_partition(problem: PlacementProblem, floor: float, tracked: Sequence[int] = (),
                    weight: np.ndarray | None = None) -> PartitionTables:
    """The admissible partition of least Σ ``weight`` that respects ``tracked`` types' counts.

    Parameters
    ----------
    problem : PlacementProblem
        Its provisioned stages and links.
    floor : float
        Samples/s every stage and link must reach.
    tracked : sequence of int
        Device types whose shared instance count is part of the state (exact); the
        other types' counts are relaxed (a result may break them, see :func:`over_counts`).
    weight : ndarray, shape (L+1, L+1, T), optional
        Weight of each stage ``[i, j)`` on type t; default the rental per hour.

    Raises
    ------
    ConfigError
        When the table would exceed :data:`MAX_STATES` cells (too many tracked instances).
    """
    size, types = problem.num_layers + 1, problem.num_types
    tracked = sorted(set(tracked))
    dims = [int(problem.counts[t]) + 1 for t in tracked]
    states = math.prod(dims)
    if size * types * states > MAX_STATES:
        names = ", ".join(f"{problem.catalog.names[t]} (count {problem.counts[t]})" for t in tracked)
        raise ConfigError(
            f"dp: tracking the shared instance counts of {names} needs {size * types * states:.3g} "
            f"states, over {MAX_STATES:.3g}; try --planner genetic")
    stride = np.zeros(types, dtype=np.int64)
    step = 1
    for t, dim in zip(tracked, dims, strict=True):
        stride[t], step = step, step * dim
    usage = np.arange(states)
    most = np.arange(int(problem.instances.max()) + 1)[:, None]  # (K, 1) instances of a stage
    # source[t, k, u]: the usage state before a stage of k instances on t that ends in state u;
    # `states` (a column of inf in `entry`) when that stage alone would exceed t's count
    source = np.empty((types, most.shape[0], states), dtype=np.int64)
    for t in range(types):
        if stride[t]:
            used = (usage // stride[t]) % (problem.counts[t] + 1)
            source[t] = np.where(used[None, :] >= most, usage[None, :] - most * stride[t], states)
        else:
            source[t] = usage[None, :]
    allowed = (problem.instances > 0) & (problem.stage_throughput >= floor)
    cost = np.where(allowed, problem.rental if weight is None else weight, np.inf)  # (L+1, L+1, T)
    link_ok = problem.link_throughput >= floor  # (L+1, T, T); a = b: a same-type split
    same_type = np.eye(types, dtype=bool)  # (a, t)
    best = np.full((size, types, states), np.inf)
    entry = np.full((size, types, states + 1), np.inf)
    entry[0, :, 0] = 0.0
    stage_start = np.zeros((size, types, states), dtype=np.int64)
    before = np.zeros((size, types, states), dtype=np.int64)  # type of the stage ending at i
    columns = np.arange(types)[None, :]
    for end in range(1, size):
        index = source[columns, problem.instances[:end, end, :]]  # (end, T, U)
        totals = cost[:end, end, :, None] + np.take_along_axis(entry[:end], index, axis=2)
        start = totals.argmin(axis=0)  # (T, U)
        best[end] = np.take_along_axis(totals, start[None], axis=0)[0]
        stage_start[end] = start
        if end < size - 1:
            options = np.where(link_ok[end][:, :, None], best[end][:, None, :], np.inf)  # (a, t, U)
            least = options.min(axis=0)
            entry[end, :, :states] = least
            # on a tie, the stage before is of another type: no same-type split that gains nothing
            others = np.where(same_type[:, :, None], np.inf, options)
            before[end] = np.where(others.min(axis=0) <= least, others.argmin(axis=0), options.argmin(axis=0))
    last, final = (int(i) for i in np.unravel_index(int(best[-1].argmin()), best[-1].shape))
    value = float(best[-1, last, final])
    runs: list[Run] = []
    if np.isfinite(value):
        end, device, state = size - 1, last, final
        while end > 0:
            start = int(stage_start[end, device, state])
            runs.append((start, end, device))
            state = int(source[device, problem.instances[start, end, device], state])
            device, end = int(before[start, device, state]), start
    return PartitionTables(best=best, entry=entry[..., :states], value=value, runs=runs[::-1])


def least_rental_partition(problem: PlacementProblem, floor: float,
                           tracked: Sequence[int] = ()) -> tuple[float, list[Run]]:
    """The admissible partition of least Σ rental, respecting ``tracked`` types' counts.

    Returns ``(inf, [])`` when none exists. Consecutive stages may share a type (a
    same-type split, linked at the type's ``intra_gbps``).
    """
    tables = solve_partition(problem, floor, tracked)
    return tables.value, tables.runs


def count_respecting_partition(problem: PlacementProblem, floor: float,
                               tracked: Sequence[int] = ()) -> tuple[float, list[Run], tuple[int, ...]]:
    """The least-rental admissible partition within every shared instance count.

    Starts with the counts of ``tracked`` in the state and adds each type whose count the
    result breaks, until it breaks none (exact: untracked counts are only relaxed).
    Returns ``(rental, runs, tracked)``; ``(inf, [], tracked)`` when no partition exists.
    """
    tracked = tuple(sorted(set(tracked)))
    while True:
        rental, runs = least_rental_partition(problem, floor, tracked)
        broken = over_counts(problem, runs)
        if not broken:
            return rental, runs, tracked
        tracked = tuple(sorted({*tracked, *broken}))
