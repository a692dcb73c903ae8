"""Multi-job device scheduling: policies that pick each job's devices for a round (docs/multijob.md).

Every policy has ``plan(problem, rng) -> device ids`` for a :class:`PlanningProblem` and
``state_dict`` / ``load_state_dict`` for checkpoints.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from fedfleet.fl.scheduling.bods import BodsPolicy
from fedfleet.fl.scheduling.config import POLICY_NAMES, SchedulerConfig
from fedfleet.fl.scheduling.cost import PlanningProblem, fairness_variance, jain_index, round_cost, round_costs
from fedfleet.fl.scheduling.genetic import GeneticPolicy
from fedfleet.fl.scheduling.heuristics import FedCSPolicy, GreedyPolicy, RandomPolicy
from fedfleet.fl.scheduling.rlds import RldsPolicy

__all__ = ["POLICY_NAMES", "BodsPolicy", "FedCSPolicy", "GeneticPolicy", "GreedyPolicy", "PlanningProblem",
           "RandomPolicy", "RldsPolicy", "SchedulerConfig", "SchedulingPolicy", "build_policy",
           "fairness_variance", "jain_index", "round_cost", "round_costs"]


class SchedulingPolicy(Protocol):
    """Chooses a job's devices among the idle candidates for one round."""

    name: str

    def plan(self, problem: PlanningProblem, rng: np.random.Generator) -> np.ndarray:
        """Sorted ids of the chosen devices (a subset of ``problem.candidates``)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def build_policy(config: SchedulerConfig, num_jobs: int, random_state: int) -> SchedulingPolicy:
    """The policy ``config.name`` with its section's settings."""
    if config.name == "random":
        return RandomPolicy()
    if config.name == "greedy":
        return GreedyPolicy()
    if config.name == "fedcs":
        return FedCSPolicy(config.fedcs_deadline_s)
    if config.name == "genetic":
        g = config.genetic
        return GeneticPolicy(g.population, g.generations, g.mutation, g.elite)
    if config.name == "bods":
        b = config.bods
        return BodsPolicy(b.initial, b.iterations, b.pool, b.xi)
    r = config.rlds
    return RldsPolicy(num_jobs, r.hidden, r.lr, r.samples, r.baseline_decay, r.epsilon, r.imitation_plans,
                      r.imitation_steps, random_state, r.weights)
