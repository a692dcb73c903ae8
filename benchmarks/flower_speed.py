"""The simulation-speed workload on Flower's simulation engine (``flwr[simulation]==1.42.0``).

Run by ``simulation_speed.py`` with the Python of an environment that holds Flower and PyTorch but
not fedfleet (see docs/benchmarks.md). The same models, data split, cohorts, initial weights and
hyper-parameters as the other runners (``speed_workload.py``): Flower's FedAvg, whose
``configure_fit`` hands each round's ten clients their partition ids from the workload's cohort, and
a ClientApp that trains one epoch of plain SGD on its partition. One evaluation, after the last
round. Prints one JSON line: the training loop's time (first fit to final evaluation), the final
accuracy and the number of client updates.

    python benchmarks/flower_speed.py --workload FILE.npz --model mlp|cnn [--cpus-per-client 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import speed_workload as workload
import torch
from flwr.client import ClientApp, NumPyClient
from flwr.common import Context, FitIns, ndarrays_to_parameters
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.simulation import run_simulation

_DATA: dict[str, workload.Workload] = {}


def data(path: str) -> workload.Workload:
    """The workload, loaded once per process (each Ray actor loads it when it first trains)."""
    if path not in _DATA:
        _DATA[path] = workload.load(path)
    return _DATA[path]


def get_weights(model: torch.nn.Module) -> list[np.ndarray]:
    return [value.detach().cpu().numpy() for value in model.state_dict().values()]


def set_weights(model: torch.nn.Module, weights: list[np.ndarray]) -> None:
    model.load_state_dict({k: torch.from_numpy(np.asarray(w)) for k, w in zip(model.state_dict(), weights,
                                                                              strict=True)})


class WorkloadClient(NumPyClient):
    def __init__(self, path: str, model_name: str) -> None:
        self.path, self.model = path, workload.MODELS[model_name]()

    def fit(self, parameters, config):  # type: ignore[no-untyped-def]
        torch.set_num_threads(1)
        set_weights(self.model, parameters)
        partition, seed = int(config["partition"]), int(config["seed"])
        x, y = data(self.path).client(partition)
        workload.local_sgd(self.model, x, y, torch.Generator().manual_seed(seed))
        return get_weights(self.model), len(x), {}


class CohortFedAvg(FedAvg):
    """FedAvg whose round r trains the workload's cohort r (partition ids sent in each client's config)."""

    def __init__(self, cohorts: np.ndarray, clock: dict[str, float], **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.cohorts, self.clock = cohorts, clock

    def configure_fit(self, server_round, parameters, client_manager):  # type: ignore[no-untyped-def]
        self.clock.setdefault("first_fit", time.perf_counter())
        cohort = self.cohorts[server_round - 1]
        proxies = client_manager.sample(num_clients=len(cohort), min_num_clients=len(cohort))
        return [(proxy, FitIns(parameters, {"partition": int(c), "seed": 1000 * (server_round - 1) + int(c)}))
                for proxy, c in zip(proxies, cohort, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", required=True)
    parser.add_argument("--model", choices=list(workload.MODELS), required=True)
    parser.add_argument("--cpus-per-client", type=float, default=1.0)
    args = parser.parse_args()
    logging.getLogger("flwr").setLevel(logging.WARNING)
    path = str(Path(args.workload).resolve())
    server_data = workload.load(path)
    rounds = len(server_data.cohorts)
    clock: dict[str, float] = {}
    result: dict[str, float] = {}

    def evaluate(server_round, parameters, config):  # type: ignore[no-untyped-def]
        if server_round < rounds:
            return None
        model = workload.MODELS[args.model]()
        set_weights(model, parameters)
        result["accuracy"] = workload.accuracy(model, server_data.test_x, server_data.test_y)
        result["loop_s"] = time.perf_counter() - clock["first_fit"]
        return 0.0, {"accuracy": result["accuracy"]}

    def server_fn(context: Context) -> ServerAppComponents:
        strategy = CohortFedAvg(server_data.cohorts, clock, fraction_evaluate=0.0, min_available_clients=2,
                                evaluate_fn=evaluate,
                                initial_parameters=ndarrays_to_parameters(get_weights(workload.initial_model(args.model))))
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds))

    def client_fn(context: Context):  # type: ignore[no-untyped-def]
        return WorkloadClient(path, args.model).to_client()

    torch.set_num_threads(1)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=ClientApp(client_fn=client_fn),
                   num_supernodes=server_data.num_clients,
                   backend_config={"client_resources": {"num_cpus": args.cpus_per_client, "num_gpus": 0.0}})
    print(json.dumps({**result, "updates": int(server_data.cohorts.size)}))


if __name__ == "__main__":
    main()
