"""Why no placement exists: the constraint that fails and by how much, in one line."""

from __future__ import annotations

import numpy as np

from fedfleet.errors import FedfleetError
from fedfleet.placement.catalog import GIB
from fedfleet.placement.cost import PlacementProblem


class PlacementInfeasible(FedfleetError):
    """No plan fits the devices' memory and meets the throughput target."""


def infeasibility(problem: PlacementProblem) -> PlacementInfeasible:
    """The error for a problem with no feasible plan, naming the binding constraint.

    Memory is checked first (a layer no device type can hold even when split over all
    its instances), then throughput (a layer no device type can run fast enough), then
    the coupling constraints (instance counts shared by stages, link bandwidth).
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
            f"memory: layer {layers[layer].name!r} needs {memory[layer, device] / GIB:.1f} GiB per "
            f"instance even on {problem.catalog.devices[device].count} x {names[device]} "
            f"({capacity[device] / GIB:.1f} GiB each): short by {shortfall[layer] / GIB:.1f} GiB"
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
    return PlacementInfeasible(
        f"throughput: every layer can meet {target:.4g} samples/s alone, but no plan does within "
        f"the instance counts and link bandwidths; add instances or lower job.throughput_target"
    )
