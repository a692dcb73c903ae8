"""Placing a network's layers on heterogeneous device types (HeterPS).

Profile the layers (:mod:`~fedfleet.placement.profile`), describe the devices
(:mod:`~fedfleet.placement.catalog`), cost stage plans (:mod:`~fedfleet.placement.cost`)
and search them with a planner (:mod:`~fedfleet.placement.planners`).
"""

from fedfleet.placement.catalog import DeviceCatalog, DeviceType, JobSpec, load_catalog
from fedfleet.placement.cost import PlacementProblem, Plan, Stage, merge_stages
from fedfleet.placement.diagnose import PlacementInfeasible
from fedfleet.placement.planners import PLANNERS, Planner
from fedfleet.placement.profile import (
    LayerProfile,
    ModelProfile,
    load_profile_table,
    profile_torch_model,
    save_profile_table,
)

__all__ = [
    "PLANNERS",
    "DeviceCatalog",
    "DeviceType",
    "JobSpec",
    "LayerProfile",
    "ModelProfile",
    "PlacementInfeasible",
    "PlacementProblem",
    "Plan",
    "Planner",
    "Stage",
    "load_catalog",
    "load_profile_table",
    "merge_stages",
    "profile_torch_model",
    "save_profile_table",
]
