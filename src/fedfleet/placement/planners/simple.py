"""Baselines: every layer on one device kind, and a layer-by-layer greedy."""

from __future__ import annotations

import numpy as np

from fedfleet.errors import ConfigError
from fedfleet.placement.catalog import GIB
from fedfleet.placement.cost import PlacementProblem, Run
from fedfleet.placement.diagnose import PlacementInfeasible
from fedfleet.placement.planners.base import Planner


class SingleTypePlanner(Planner):
    """The whole network as one stage on the best device type of one kind.

    Parameters
    ----------
    kind : {"cpu", "gpu", "accelerator"}
        Device kind allowed; the cheapest feasible type of that kind wins.
    """

    def __init__(self, kind: str = "cpu") -> None:
        self.kind = kind

    def _search(self, problem: PlacementProblem) -> list[Run] | None:
        candidates = [t for t, d in enumerate(problem.catalog.devices) if d.kind == self.kind]
        if not candidates:
            raise ConfigError(f"the device catalog has no {self.kind} type; choose another planner")
        best: tuple[tuple[float, float], list[Run]] | None = None
        for device in candidates:
            runs = [(0, problem.num_layers, device)]
            score = problem.score_runs(runs)
            self.evaluations_ += 1
            if score[0] == 0 and (best is None or score < best[0]):
                best = (score, runs)
        if best is None:
            raise self._why_not(problem, candidates)
        return best[1]

    def _why_not(self, problem: PlacementProblem, candidates: list[int]) -> PlacementInfeasible:
        """The one-line reason no type of this kind can run the whole model alone."""
        whole = problem.num_layers
        devices = problem.catalog.devices
        capacity = np.array([devices[t].memory_gb * GIB for t in candidates])
        memory = problem.least_memory[0, whole, candidates]
        if np.all(memory > capacity):
            at = int(np.argmin(memory - capacity))
            return PlacementInfeasible(
                f"memory: the whole model needs {memory[at] / GIB:.1f} GiB per instance even on "
                f"{devices[candidates[at]].count} x {devices[candidates[at]].name} "
                f"({capacity[at] / GIB:.1f} GiB each): short by {(memory[at] - capacity[at]) / GIB:.1f} GiB"
            )
        rates = problem.best_throughput[0, whole, candidates]
        at = int(np.argmax(rates))
        target = problem.job.throughput_target
        return PlacementInfeasible(
            f"throughput: the whole model on {devices[candidates[at]].name} reaches at most "
            f"{rates[at]:.4g} samples/s, below the target {target:.4g} samples/s by "
            f"{100 * (1 - rates[at] / target):.1f}%"
        )


class GreedyPlanner(Planner):
    """Place layers in order, each on the type that makes the placed prefix cheapest.

    A layer may join the last stage, start a stage on another type, or start a new stage
    on the last stage's type (a same-type split). The prefix is costed with the full
    model (links count, instance counts bind), but earlier choices are never revisited.
    """

    def _search(self, problem: PlacementProblem) -> list[Run] | None:
        runs: list[Run] = []
        for layer in range(problem.num_layers):
            options: list[list[Run]] = []
            for device in range(problem.num_types):
                if runs and runs[-1][2] == device:  # join the last stage (tried first: wins ties)
                    options.append([*runs[:-1], (runs[-1][0], layer + 1, device)])
                options.append([*runs, (layer, layer + 1, device)])
            scores = [problem.score_runs(option) for option in options]
            self.evaluations_ += len(options)
            runs = options[min(range(len(options)), key=scores.__getitem__)]
        return runs
