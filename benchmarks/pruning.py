"""Adaptive structured pruning (FedDUAP's FedAP) against unpruned FedAvg, uniform and unstructured pruning.

The issue's setting: Fashion-MNIST, 100 devices, Dirichlet 0.5, 10 per round, LeNet-5 and the
CNN, 3 seeds. Rounds are reduced to fit a shared 2-core machine (see docs/benchmarks.md for
the scale run). Per seed and model, on the same data, fleet, cohorts and test images:

- **FedAvg**: no pruning;
- **adaptive**: ``pruning.method=adaptive`` at ``--target-rate`` (FedAP's per-layer rates from
  the weight-magnitude quantile, judged on the server's validation split with ``--delta``);
- **uniform**: every conv layer at one rate, chosen so that it removes as many forward FLOPs as
  the adaptive run of the same seed ended with, pruned at the same round, no feedback;
- **magnitude**: unstructured, the smallest weights zeroed at the share of parameters the
  adaptive run removed.

Every run holds out the same ``--validation-fraction`` of the test set (only the adaptive run
looks at it) and reports accuracy on the rest. Client compute wall time is measured by
training the same ``--timing-clients`` clients for one round with each run's final model, one
thread, after one untimed pass, median of ``--repeats`` passes interleaved across the models.

    nice -n 10 python benchmarks/pruning.py [--models lenet5 cnn] [--rounds 20] [--seeds 3]
        [--start-round 6] [--target-rate 0.6] [--delta 0.01] [--target 0.7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from torch import nn

from fedfleet.config import load_config
from fedfleet.fl import FederatedData, LocalTrainingPlan, TrainTask, build_federated_data, run_simulation
from fedfleet.fl.client import LocalTrainer
from fedfleet.fl.params import get_flat
from fedfleet.models import build_model
from fedfleet.pruning import count_flops, filters_to_keep, prune_channels
from fedfleet.threads import torch_threads

SHAPE = (1, 28, 28)


def config(args: argparse.Namespace, model: str, seed: int, pruning: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"pruning-{model}", "seed": seed,
        "data": {"dataset": "fashion_mnist", "num_clients": 100, "partition": "dirichlet", "alpha": 0.5},
        "model": {"name": model},
        "train": {"rounds": args.rounds, "clients_per_round": 10, "lr": args.lr, "batch_size": 32,
                  "target_accuracy": args.target},
        "pruning": {"start_round": args.start_round, "validation_fraction": args.validation_fraction,
                    "recovery_rounds": args.recovery_rounds, "delta": args.delta, "max_rate": 0.95, **pruning},
        "checkpoint_every": 0,
    }


def uniform_rate_for_flops(model_name: str, flops: int) -> float:
    """The one per-layer rate whose structurally pruned model has the FLOPs closest to ``flops``."""
    model = build_model(model_name, SHAPE, 10)
    sites = [index for index, layer in enumerate(model) if isinstance(layer, nn.Conv2d)]

    def pruned_flops(rate: float) -> int:
        keep = {i: range(filters_to_keep(model[i].out_channels, rate)) for i in sites}
        return count_flops(prune_channels(model, keep, SHAPE), SHAPE)

    return min((r / 100 for r in range(1, 95)), key=lambda rate: abs(pruned_flops(rate) - flops))


def client_seconds(models: dict[str, nn.Module], data: FederatedData, clients: list[int],
                   repeats: int) -> dict[str, float]:
    """Wall seconds to train ``clients`` for one local epoch on each model: one untimed pass each, then
    ``repeats`` passes interleaved across the models (so drifting machine load hits all alike); medians."""
    trainers = {name: (LocalTrainer(model), get_flat(model)) for name, model in models.items()}
    plan = LocalTrainingPlan(1, 32, 0.05, 0.0, 0.0)
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch_threads(1):
        for repeat in range(repeats + 1):
            for name, (trainer, params) in trainers.items():
                started = time.perf_counter()
                for client in clients:
                    trainer.train(TrainTask(client, params, 0, plan, client), data.clients[client])
                if repeat > 0:
                    times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def run(args: argparse.Namespace, model: str, seed: int, pruning: dict[str, Any], data: FederatedData,
        ) -> dict[str, Any]:
    result = run_simulation(load_config(config(args, model, seed, pruning)), data=data)
    summary = result.summary
    return {"final": summary["final_accuracy"], "time_to_target": summary["time_to_target_s"],
            "virtual_time": summary["virtual_time_s"], "params": summary.get("model_nonzero_params"),
            "flops": summary.get("model_flops"), "flops_reduction": summary.get("flops_reduction", 0.0),
            "params_reduction": summary.get("params_reduction", 0.0), "model": result.model,
            "decisions": summary.get("pruning_decisions", [])}


def mean_std(values: list[float], digits: int = 4) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def reached(values: list[float | None]) -> str:
    hit = [v for v in values if v is not None]
    return f"{statistics.mean(hit):.0f} ({len(hit)}/{len(values)})" if hit else f"- (0/{len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "cnn"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--start-round", type=int, default=6)
    parser.add_argument("--recovery-rounds", type=int, default=2)
    parser.add_argument("--target-rate", type=float, default=0.6)
    parser.add_argument("--delta", type=float, default=0.01)
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--target", type=float, default=0.7)
    parser.add_argument("--timing-clients", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    for model in args.models:
        rows: dict[str, list[dict[str, Any]]] = {}
        for seed in range(args.seeds):
            base = load_config(config(args, model, seed, {}))
            data = build_federated_data(base.data, seed).with_validation(args.validation_fraction, seed)
            plain = run(args, model, seed, {"enabled": False}, data)
            plain["flops"] = count_flops(plain["model"], SHAPE)
            plain["params"] = sum(p.numel() for p in plain["model"].parameters())
            adaptive = run(args, model, seed, {"enabled": True, "method": "adaptive",
                                               "target_rate": args.target_rate}, data)
            rate = uniform_rate_for_flops(model, adaptive["flops"])
            uniform = run(args, model, seed, {"enabled": True, "method": "uniform", "target_rate": rate}, data)
            magnitude = run(args, model, seed, {"enabled": True, "method": "magnitude",
                                                "target_rate": max(0.01, adaptive["params_reduction"])}, data)
            runs = {"FedAvg (unpruned)": plain, "adaptive (FedAP)": adaptive, "uniform (same FLOPs)": uniform,
                    "magnitude (unstructured)": magnitude}
            clients = list(range(args.timing_clients))
            seconds = client_seconds({name: row["model"] for name, row in runs.items()}, data, clients, args.repeats)
            for name, row in runs.items():
                row["client_s"] = seconds[name]
                rows.setdefault(name, []).append(row)
            decisions = "; ".join(f"layer {d['layer']} {d['rate']:.2f} {d['decision'].split(' ')[0]}"
                                  for d in adaptive["decisions"])
            finals = ", ".join(f"{name} {row['final']:.4f}" for name, row in runs.items())
            print(f"{model} seed {seed}: final {finals}; "
                  f"uniform rate {rate:.2f}; adaptive: {decisions} ({time.perf_counter() - started:.0f} s)",
                  flush=True)
        print(f"\n## {model} ({args.rounds} rounds, pruning from round {args.start_round}, {args.seeds} seeds)")
        print(f"| method | final acc | FLOPs/sample | FLOPs cut | non-zero params | client s/round (wall) | "
              f"virtual s (run) | virtual s to {args.target:g} |")
        print("|---|---|---|---|---|---|---|---|")
        for name, runs_ in rows.items():
            print(f"| {name} | {mean_std([r['final'] for r in runs_])} | "
                  f"{statistics.mean(r['flops'] for r in runs_):,.0f} | "
                  f"{mean_std([r['flops_reduction'] for r in runs_], 3)} | "
                  f"{statistics.mean(r['params'] for r in runs_):,.0f} | "
                  f"{mean_std([r['client_s'] for r in runs_], 3)} | "
                  f"{statistics.mean(r['virtual_time'] for r in runs_):.0f} | "
                  f"{reached([r['time_to_target'] for r in runs_])} |")
        print(flush=True)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
