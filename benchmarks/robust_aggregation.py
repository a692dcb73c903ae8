"""Robust aggregation: final accuracy of each aggregator under model-poisoning attacks.

Fashion-MNIST, the 2NN MLP, 50 clients split Dirichlet(0.5) (Non-IID), 10 clients per round,
FedAvg, the default validation (max_norm_ratio 10). Attackers are a fixed 10 % or 30 % of the
clients (drawn from the seed); each attacking update is the client's honest delta Δ replaced by
−5Δ (sign_flip), 5Δ (boost) or Gaussian noise of norm 5‖Δ‖ (random). Rows without attackers
are run on both an IID and the Non-IID split, to show what each rule costs when nobody attacks.
The table gives the final test accuracy and the updates validation rejected (before aggregation).

A second table is the issue's small-cohort case on digits (10 clients, 2 per round, 20 rounds):
clients 0 and 1 sign-flip their update and scale it to 9.5x the global model's norm, just under
the validation ratio of 10; it counts the honest and the attacking updates validation rejected.

    python benchmarks/robust_aggregation.py [--part grid|small|all] [--rounds 20] [--clients 50]
                                            [--per-round 10] [--seeds 0] [--small-seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch

from fedfleet.config import load_config
from fedfleet.fl import ClientUpdate, TrainTask, run_simulation
from fedfleet.fl.attacks import AttackName, ModelPoisoning, SignFlipToNorm, choose_attackers
from fedfleet.fl.federated_data import build_federated_data

AGGREGATORS: dict[str, list[str]] = {
    "mean": [],
    "median": ["aggregator.name=median"],
    "trimmed_mean": ["aggregator.name=trimmed_mean", "aggregator.trim_fraction=0.3"],
    "krum": ["aggregator.name=krum"],
    "multi_krum": ["aggregator.name=multi_krum"],
    "clip_auto": ["aggregator.clip_norm=auto"],
}
ATTACKS: list[tuple[str, AttackName | None, float]] = [
    ("none (IID)", None, 0.0),
    ("none", None, 0.0),
    ("sign_flip", "sign_flip", 0.1), ("sign_flip", "sign_flip", 0.3),
    ("boost", "boost", 0.1), ("boost", "boost", 0.3),
    ("random", "random", 0.1), ("random", "random", 0.3),
]


class Sent:
    """Client hook recording (round, client) of every update that reaches the server."""

    def __init__(self) -> None:
        self.updates: set[tuple[int, int]] = set()

    def __call__(self, task: TrainTask, update: ClientUpdate) -> ClientUpdate:
        self.updates.add((task.base_version + 1, update.client_id))
        return update


def small_cohort(seeds: list[int]) -> None:
    """The issue's case: two clients per round, one of them sending -Δ scaled to 9.5x the global norm."""
    attackers = {0, 1}
    base = ["data.num_clients=10", "train.clients_per_round=2", "train.rounds=20", "fleet.profile=uniform",
            "train.eval_every=20", "checkpoint_every=0"]
    print(f"\ndigits MLP, 10 clients, 2 per round, 20 rounds, attackers {sorted(attackers)} at 9.5x the global "
          f"norm, seeds {seeds}; mean final accuracy, rejected updates (honest / attacking)")
    print("| setting | clean | attacked | rejected honest | rejected attacking | attacking updates sent |")
    print("|---|---|---|---|---|---|")
    for label, overrides in [("mean (default)", []), ("clip_norm=auto", ["aggregator.clip_norm=auto"])]:
        clean, attacked, honest_rejected, attack_rejected, attack_sent = [], [], 0, 0, 0
        for seed in seeds:
            config = load_config("configs/digits.yaml", [*base, *overrides, f"seed={seed}"])
            clean.append(run_simulation(config).summary["final_accuracy"])
            sent = Sent()
            with tempfile.TemporaryDirectory() as out_dir:
                result = run_simulation(config, out_dir=out_dir, client_hooks=[SignFlipToNorm(attackers, 9.5), sent])
                path = Path(out_dir) / "rejections.jsonl"
                lines = path.read_text().splitlines() if path.exists() else []
            attacked.append(result.summary["final_accuracy"])
            rejected = [json.loads(line)["client_id"] for line in lines]
            attack_rejected += sum(c in attackers for c in rejected)
            honest_rejected += sum(c not in attackers for c in rejected)
            attack_sent += sum(c in attackers for _, c in sent.updates)
        print(f"| {label} | {sum(clean) / len(clean):.3f} | {sum(attacked) / len(attacked):.3f} | "
              f"{honest_rejected} | {attack_rejected} | {attack_sent} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["grid", "small", "all"], default="all")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--small-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)  # rejections are counted in the tables
    if args.part in ("grid", "all"):
        grid(args)
    if args.part in ("small", "all"):
        small_cohort(args.small_seeds)


def grid(args: argparse.Namespace) -> None:
    """Every aggregator against every attack, on Fashion-MNIST."""
    base = ["model.name=mlp", f"data.num_clients={args.clients}", f"train.clients_per_round={args.per_round}",
            f"train.rounds={args.rounds}", f"train.eval_every={args.rounds}", "train.target_accuracy=null",
            "data.test_fraction=0.5", "checkpoint_every=0"]
    print(f"Fashion-MNIST MLP, {args.clients} clients, {args.per_round} per round, {args.rounds} rounds, "
          f"seeds {args.seeds}; accuracy (rejected updates)")
    print("| attack | attackers | " + " | ".join(AGGREGATORS) + " |")
    print("|---|---|" + "---|" * len(AGGREGATORS))
    started = time.perf_counter()
    for label, attack, fraction in ATTACKS:
        partition = ["data.partition=iid"] if label == "none (IID)" else []
        splits = {seed: build_federated_data(load_config(None, [*base, *partition, f"seed={seed}"]).data, seed)
                  for seed in args.seeds}  # the aggregator does not change the data
        cells = []
        for overrides in AGGREGATORS.values():
            accuracies, rejected = [], 0
            for seed, data in splits.items():
                config = load_config(None, [*base, *partition, *overrides, f"seed={seed}"])
                hooks = [] if attack is None else [
                    ModelPoisoning(choose_attackers(args.clients, fraction, seed), attack, scale=5.0)]
                result = run_simulation(config, data, client_hooks=hooks)
                accuracies.append(result.summary["final_accuracy"])
                rejected += result.history[-1]["updates_rejected"]
            cells.append(f"{sum(accuracies) / len(accuracies):.3f} ({rejected})")
        print(f"| {label} | {fraction:.0%} | " + " | ".join(cells) + " |", flush=True)
    print(f"total wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
