"""Planners by name: ``PLANNERS.build("genetic", random_state=0).fit(problem).plan_``."""

from __future__ import annotations

from typing import Any

from fedfleet.placement.partition import least_rental_partition
from fedfleet.placement.planners.base import Planner
from fedfleet.placement.planners.dp import DynamicProgrammingPlanner
from fedfleet.placement.planners.exhaustive import BruteForcePlanner
from fedfleet.placement.planners.genetic import GeneticPlanner
from fedfleet.placement.planners.reinforce import ReinforcePlanner
from fedfleet.placement.planners.simple import GreedyPlanner, SingleTypePlanner
from fedfleet.registry import Registry

PLANNERS: Registry[Planner] = Registry("planner")


@PLANNERS.register("genetic")
def _genetic(**params: Any) -> Planner:
    return GeneticPlanner(**params)


@PLANNERS.register("brute")
def _brute(**params: Any) -> Planner:
    return BruteForcePlanner(**params)


@PLANNERS.register("dp")
def _dp() -> Planner:
    return DynamicProgrammingPlanner()


@PLANNERS.register("rl")
def _rl(**params: Any) -> Planner:
    return ReinforcePlanner(**params)


@PLANNERS.register("greedy")
def _greedy() -> Planner:
    return GreedyPlanner()


@PLANNERS.register("cpu-only")
def _cpu_only() -> Planner:
    return SingleTypePlanner(kind="cpu")


@PLANNERS.register("gpu-only")
def _gpu_only() -> Planner:
    return SingleTypePlanner(kind="gpu")


__all__ = [
    "PLANNERS",
    "BruteForcePlanner",
    "DynamicProgrammingPlanner",
    "GeneticPlanner",
    "GreedyPlanner",
    "Planner",
    "ReinforcePlanner",
    "SingleTypePlanner",
    "least_rental_partition",
]
