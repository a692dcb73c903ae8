"""Why no placement exists: the constraint that fails and by how much, in one line."""

from __future__ import annotations

import numpy as np

from fedfleet.errors import ConfigError, FedfleetError
from fedfleet.placement.catalog import GIB
from fedfleet.placement.cost import PlacementProblem
from fedfleet.placement.partition import PartitionTables, count_respecting_partition, over_counts, solve_partition


class PlacementInfeasible(FedfleetError):
    """No plan fits the devices' memory and meets the throughput target."""


def _size(num_bytes: float) -> str:
    """Bytes in the largest binary unit that keeps the number at least 1 (so never "0.0 GiB")."""
    for unit, scale in (("GiB", GIB), ("MiB", 2.0**20), ("KiB", 2.0**10)):
        if abs(num_bytes) >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes:.0f} bytes"


def infeasibility(problem: PlacementProblem, planner: str | None = None) -> PlacementInfeasible:
    """The error for a problem with no feasible plan, naming the binding constraint.

    Memory is checked first (a layer no device type can hold even when split over all
    its instances), then throughput (a layer no device type can run fast enough), then
    the coupling constraints: link bandwidth and stages that grow too slow when merged
    (the layer boundary no plan gets past, even ignoring shared counts), then the shared
    instance counts (the type short of instances, and by how many). When a plan does
    exist (``planner``, a heuristic, missed it), the message says so.
    """
    names = problem.catalog.names
    layers = problem.profile.layers
    single = np.arange(problem.num_layers)
    capacity = np.array([d.memory_gb for d in problem.catalog.devices]) * GIB
    memory = problem.least_memory[single, single + 1]  # (L, T) bytes per instance
    shortfall = (memory - capacity).min(axis=1)  # best type per layer
    if shortfall.max() > 0:
        layer = int(shortfall.argmax())
        device = int((memory[layer] - capacity).argmin())
        return PlacementInfeasible(
            f"memory: layer {layers[layer].name!r} needs {_size(memory[layer, device])} per "
            f"instance even on {problem.catalog.devices[device].count} x {names[device]} "
            f"({_size(capacity[device])} each): short by {_size(shortfall[layer])}"
        )
    target = problem.job.throughput_target
    reachable = problem.best_throughput[single, single + 1]  # (L, T) samples/s
    best = reachable.max(axis=1)
    if best.min() < target:
        layer = int(best.argmin())
        device = int(reachable[layer].argmax())
        return PlacementInfeasible(
            f"throughput: layer {layers[layer].name!r} reaches at most {best[layer]:.4g} samples/s "
            f"(on {names[device]}), below the target {target:.4g} samples/s by "
            f"{100 * (1 - best[layer] / target):.1f}%"
        )
    relaxed = solve_partition(problem, target)  # shared instance counts ignored
    if not relaxed.runs:
        return _blocked_boundary(problem, relaxed)
    try:
        _, runs, _ = count_respecting_partition(problem, target)
    except ConfigError:
        runs = None  # too many instances to track exactly; the count check below still holds
    if runs:
        return PlacementInfeasible(
            f"{planner or 'the planner'} found no plan meeting {target:.4g} samples/s within memory and the "
            "instance counts, but one exists; --planner dp finds the cheapest")
    return _count_shortfall(problem, unknown=runs is None)


def _blocked_boundary(problem: PlacementProblem, relaxed: PartitionTables) -> PlacementInfeasible:
    """Even ignoring shared counts no plan exists: name the layer boundary no plan crosses.

    Every layer alone can be provisioned, so plans stop at a boundary where the links from
    the types that can end the plan so far to the types that can run the next layer are too
    slow, and no stage can hold the layers on both sides of it fast enough.
    """
    names, layers = problem.catalog.names, problem.profile.layers
    target = problem.job.throughput_target
    reached = np.isfinite(relaxed.best).any(axis=2)  # (L+1, T): a plan of layers [0, j) ends on t
    edge = int(np.flatnonzero(reached.any(axis=1)).max())  # plans reach this boundary, none beyond
    before, after = layers[edge - 1].name, layers[edge].name
    ends = np.flatnonzero(reached[edge])
    starts = np.flatnonzero(problem.instances[edge, edge + 1] > 0)
    # every layer alone can be provisioned, so both ends and starts are non-empty
    link, a, b = max((float(problem.link_throughput[edge, a, b]), int(a), int(b)) for a in ends for b in starts)
    parts = [f"the fastest usable link after layer {before!r} ({names[a]}→{names[b]}) carries "
             f"{link:.4g} samples/s, short by {100 * (1 - link / target):.1f}%"]
    # stages [i, edge] that may follow a plan ending at i (or start the pipeline)
    startable = np.isfinite(relaxed.entry).any(axis=2)[:edge] | (np.arange(edge) == 0)[:, None]
    spanning = np.where(startable, problem.best_throughput[:edge, edge + 1], -1.0)  # (edge, T)
    first, device = np.unravel_index(int(spanning.argmax()), spanning.shape)
    rate = float(spanning[first, device])
    together = f"layers {layers[first].name!r} … {after!r}"
    if rate > 0:
        parts.append(f"the fastest stage running {together} together ({names[device]}) reaches "
                     f"{rate:.4g} samples/s, short by {100 * (1 - rate / target):.1f}%")
    else:
        parts.append(f"no device type's memory holds a stage running {together} together")
    return PlacementInfeasible(
        f"throughput: no plan gets past layer {after!r} at {target:.4g} samples/s: " + "; and ".join(parts)
        + "; raise that link's bandwidth or lower job.throughput_target")


def _count_shortfall(problem: PlacementProblem, unknown: bool) -> PlacementInfeasible:
    """Plans exist when shared counts are ignored: which count fails, and by how many instances."""
    names, counts = problem.catalog.names, problem.counts
    target = problem.job.throughput_target
    types = np.arange(problem.num_types)
    fewest = np.array([solve_partition(problem, target, weight=problem.instances * (types == t)).value
                       for t in types])  # least instances of type t over plans ignoring counts
    short = fewest - counts
    if short.max() > 0:
        t = int(short.argmax())
        return PlacementInfeasible(
            f"instance counts: every plan meeting {target:.4g} samples/s needs at least {fewest[t]:.0f} x "
            f"{names[t]}, but {counts[t]} are available: short by {short[t]:.0f}; add {names[t]} "
            "instances or lower job.throughput_target")
    share = solve_partition(problem, target, weight=problem.instances / counts).runs
    broken = over_counts(problem, share)
    if not broken:  # only reachable when the exact check was too large to run
        return PlacementInfeasible(
            "the planner found no plan within the instance counts, but one exists; --planner dp finds the cheapest")
    used = {t: sum(int(problem.instances[f, e, d]) for f, e, d in share if d == t) for t in broken}
    needs = ", ".join(f"{used[t]} x {names[t]} ({counts[t]} available)" for t in broken)
    prefix = "no plan was found that" if unknown else "no plan"
    return PlacementInfeasible(
        f"instance counts: each type's count alone can be met, but {prefix} meets {target:.4g} samples/s "
        f"within all of them; the plan using the smallest share of the counts needs {needs}; add "
        "instances or lower job.throughput_target")
