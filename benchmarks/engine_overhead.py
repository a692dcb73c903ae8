"""Engine overhead: the same FedAvg training through fedfleet's engine and as a plain PyTorch loop.

Both sides do identical work: the same Fashion-MNIST clients (100, Dirichlet 0.5), the
same cohorts and per-client batch orders (recorded from the engine run and replayed),
the same model, batch size, epochs and initial weights, and one evaluation of the final
model. The engine side is ``run_simulation`` writing its run directory (metrics, checkpoint,
model); the HTML report of ``fedfleet run`` is left out. Both run in one process on one PyTorch
thread (``backend.workers=1``: what worker processes add is measured by simulation_speed.py).
The table shows the median wall time of several interleaved repeats and the ratio
engine/plain; the two final models are also checked to be equal.

    python benchmarks/engine_overhead.py [--repeats 3] [--mlp-rounds 20] [--cnn-rounds 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass

import torch
from torch import nn

from fedfleet.config import RunConfig, load_config
from fedfleet.fl import FederatedData, run_simulation
from fedfleet.fl.client import evaluate
from fedfleet.fl.federated_data import build_federated_data
from fedfleet.fl.messages import ClientUpdate, TrainTask
from fedfleet.models import build_model


@dataclass(frozen=True)
class Assignment:
    round_index: int
    client_id: int
    seed: int


class TaskRecorder:
    """A client hook that records which client trained in which round with which batch seed."""

    def __init__(self) -> None:
        self.assignments: list[Assignment] = []

    def __call__(self, task: TrainTask, update: ClientUpdate) -> ClientUpdate:
        self.assignments.append(Assignment(task.base_version, task.client_id, task.seed))
        return update


def initial_model(config: RunConfig, data: FederatedData) -> nn.Module:
    torch.manual_seed(config.seed)
    return build_model(config.model.name, data.input_shape, data.num_classes)


def engine_run(config: RunConfig, data: FederatedData) -> tuple[float, nn.Module, list[Assignment]]:
    recorder = TaskRecorder()
    model = initial_model(config, data)
    with tempfile.TemporaryDirectory() as out_dir:
        started = time.perf_counter()
        result = run_simulation(config, data, model, out_dir=out_dir, client_hooks=[recorder])
        elapsed = time.perf_counter() - started
    return elapsed, result.model, recorder.assignments


def plain_run(config: RunConfig, data: FederatedData, assignments: list[Assignment]) -> tuple[float, nn.Module]:
    """Hand-written FedAvg: load global weights, local SGD, sample-weighted average of the updates."""
    train = config.train
    model = initial_model(config, data)
    started = time.perf_counter()
    rounds = sorted({a.round_index for a in assignments})
    for round_index in rounds:
        global_state = [p.detach().clone() for p in model.parameters()]
        totals = [torch.zeros_like(p) for p in global_state]
        cohort = [a for a in assignments if a.round_index == round_index]
        cohort_samples = sum(len(data.clients[a.client_id]) for a in cohort)
        for assignment in cohort:
            client = data.clients[assignment.client_id]
            with torch.no_grad():
                for param, value in zip(model.parameters(), global_state, strict=True):
                    param.copy_(value)
            optimizer = torch.optim.SGD(model.parameters(), lr=train.lr)
            generator = torch.Generator().manual_seed(assignment.seed)
            model.train()
            for _ in range(train.local_epochs):
                for batch in torch.randperm(len(client), generator=generator).split(train.batch_size):
                    loss = nn.functional.cross_entropy(model(client.x[batch]), client.y[batch])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
            weight = len(client) / cohort_samples
            for total, param, global_value in zip(totals, model.parameters(), global_state, strict=True):
                total.add_(param.detach() - global_value, alpha=weight)
        with torch.no_grad():
            for param, total, global_value in zip(model.parameters(), totals, global_state, strict=True):
                param.copy_(global_value + total)
    evaluate(model, data.test)
    return time.perf_counter() - started, model


def max_difference(a: nn.Module, b: nn.Module) -> float:
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mlp-rounds", type=int, default=20)
    parser.add_argument("--cnn-rounds", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| model | rounds | samples trained | engine s | plain s | ratio | max param diff |")
    print("|---|---|---|---|---|---|---|")
    for model_name, rounds in (("mlp", args.mlp_rounds), ("cnn", args.cnn_rounds)):
        config = load_config(None, [f"model.name={model_name}", f"train.rounds={rounds}",
                                    f"train.eval_every={rounds}", "train.target_accuracy=null",
                                    "checkpoint_every=0", "backend.workers=1"])
        data = build_federated_data(config.data, config.seed)
        engine_times, plain_times = [], []
        plain_run(config, data, engine_run(config, data)[2])  # warm-up: first calls pay one-off set-up
        for _ in range(args.repeats):
            engine_s, engine_model, assignments = engine_run(config, data)
            plain_s, plain_model = plain_run(config, data, assignments)
            engine_times.append(engine_s)
            plain_times.append(plain_s)
        samples = sum(len(data.clients[a.client_id]) for a in assignments) * config.train.local_epochs
        engine_median, plain_median = statistics.median(engine_times), statistics.median(plain_times)
        print(f"| {model_name} | {rounds} | {samples} | {engine_median:.2f} | {plain_median:.2f} | "
              f"{engine_median / plain_median:.3f} | {max_difference(engine_model, plain_model):.1e} |", flush=True)


if __name__ == "__main__":
    main()
