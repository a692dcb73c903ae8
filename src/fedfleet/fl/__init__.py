"""The federated learning engine: messages, clients, strategies, fleet, runners."""

from fedfleet.fl.federated_data import FederatedData, build_federated_data
from fedfleet.fl.messages import ClientUpdate, LocalTrainingPlan, TrainTask
from fedfleet.fl.simulation import RunResult, build_runner, resume_simulation, run_simulation

__all__ = [
    "ClientUpdate",
    "FederatedData",
    "LocalTrainingPlan",
    "RunResult",
    "TrainTask",
    "build_federated_data",
    "build_runner",
    "resume_simulation",
    "run_simulation",
]
