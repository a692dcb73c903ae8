"""Non-IID-degree weighted aggregation (FedJS, FedDH) against FedAvg, FedProx and FedNova.

The issue's setting is Fashion-MNIST over 100 devices, 10 per round, the CNN, 5 local epochs,
batch 10, Dirichlet(0.1), Dirichlet(0.5) and 2-class shards, 3 seeds. Every knob of that setting
is an option here; the defaults are a reduced scale that fits a shared 2-core machine (see
docs/benchmarks.md for the scale actually run). FedProx's mu is tuned over {0.001, 0.01, 0.1}
on the first seed of each partition (best final accuracy), then fixed for all seeds. Every
method sees the same fleet, cohorts and seeds (the round stream depends on the seed only).

    nice -n 10 python benchmarks/noniid_aggregation.py [--rounds 50] [--epochs 1] [--batch-size 10]
        [--model mlp] [--seeds 3] [--test-fraction 0.2] [--target 0.7] [--out DIR]

Prints one table per partition: final and best accuracy (mean ± std over seeds), rounds and
virtual time to ``--target`` (mean over the seeds that reached it, and how many did), and for
FedDH how the learned λ_k, b_k ended up. With ``--out``, accuracy curves go to DIR/curves.png.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from fedfleet.config import load_config
from fedfleet.data.partition import noniid_degree
from fedfleet.fl import build_federated_data, run_simulation
from fedfleet.fl.strategies import NonIIDWeighted, build_strategy

PARTITIONS: dict[str, dict[str, Any]] = {
    "dirichlet 0.1": {"partition": "dirichlet", "alpha": 0.1},
    "dirichlet 0.5": {"partition": "dirichlet", "alpha": 0.5},
    "shards 2": {"partition": "shards", "shards_per_client": 2},
}
PROX_MUS = (0.001, 0.01, 0.1)


def base_config(args: argparse.Namespace, seed: int, partition: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "noniid-aggregation",
        "seed": seed,
        "data": {"dataset": "fashion_mnist", "num_clients": 100, "test_fraction": args.test_fraction, **partition},
        "model": {"name": args.model},
        "train": {"rounds": args.rounds, "clients_per_round": 10, "local_epochs": args.epochs,
                  "batch_size": args.batch_size, "lr": args.lr, "target_accuracy": args.target},
        "checkpoint_every": 0,
    }


def methods(mu: float) -> dict[str, dict[str, Any]]:
    return {
        "FedAvg": {"name": "fedavg"},
        f"FedProx mu={mu:g}": {"name": "fedprox", "mu": mu},
        "FedNova": {"name": "fednova"},
        "FedJS (noniid, static)": {"name": "noniid", "adaptive": False},
        "FedDH (noniid, adaptive)": {"name": "noniid", "adaptive": True},
    }


def one_run(args: argparse.Namespace, seed: int, partition: dict[str, Any], strategy: dict[str, Any],
            data: Any) -> dict[str, Any]:
    config = load_config({**base_config(args, seed, partition), "strategy": strategy})
    built = build_strategy(config.strategy)
    result = run_simulation(config, data=data, strategy=built)
    curve = [r["test_accuracy"] for r in result.history]
    reached = [r["round"] for r in result.history if r["test_accuracy"] >= args.target]
    row = {"final": result.summary["final_accuracy"], "best": result.summary["best_accuracy"],
           "rounds_to_target": reached[0] if reached else None,
           "time_to_target": result.summary["time_to_target_s"], "curve": curve}
    if isinstance(built, NonIIDWeighted) and built.adaptive:
        seen = built.times_updated > 0
        degree = noniid_degree(data.label_histograms())[seen]
        lam, b = built.lam[seen], built.b[seen]
        row["learned"] = {"lambda": (float(lam.min()), float(np.median(lam)), float(lam.max())),
                          "b": (float(b.min()), float(np.median(b)), float(b.max())),
                          "corr_lambda_degree": float(np.corrcoef(lam, degree)[0, 1]) if lam.std() > 0 else 0.0}
    return row


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def reached_mean(values: list[float | None], digits: int) -> str:
    hit = [v for v in values if v is not None]
    return f"{statistics.mean(hit):.{digits}f} ({len(hit)}/{len(values)})" if hit else f"- (0/{len(values)})"


def print_table(title: str, rows: dict[str, list[dict[str, Any]]], target: float) -> None:
    print(f"\n## {title}")
    print(f"| method | final acc | best acc | rounds to {target:g} | virtual s to {target:g} |")
    print("|---|---|---|---|---|")
    for name, runs in rows.items():
        print(f"| {name} | {mean_std([r['final'] for r in runs])} | {mean_std([r['best'] for r in runs])} | "
              f"{reached_mean([r['rounds_to_target'] for r in runs], 1)} | "
              f"{reached_mean([r['time_to_target'] for r in runs], 0)} |")
    for name, runs in rows.items():
        for seed, r in enumerate(runs):
            if "learned" in r:
                learned = r["learned"]
                print(f"  {name} seed {seed}: lambda min/median/max {learned['lambda'][0]:.3f}/"
                      f"{learned['lambda'][1]:.3f}/{learned['lambda'][2]:.3f}, b {learned['b'][0]:.4f}/"
                      f"{learned['b'][1]:.4f}/{learned['b'][2]:.4f}, corr(lambda, D) "
                      f"{learned['corr_lambda_degree']:+.2f}")
    print(flush=True)


def plot(curves: dict[str, dict[str, list[list[float]]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), squeeze=False)
    for ax, (title, by_method) in zip(axes[0], curves.items(), strict=True):
        for name, runs in by_method.items():
            ax.plot(np.arange(1, len(runs[0]) + 1), np.mean(runs, axis=0), label=name)
        ax.set(title=title, xlabel="round", ylabel="test accuracy (mean over seeds)")
    axes[0][0].legend(fontsize=7)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "curves.png", dpi=100, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--target", type=float, default=0.7)
    parser.add_argument("--partitions", nargs="+", default=list(PARTITIONS), choices=list(PARTITIONS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    curves: dict[str, dict[str, list[list[float]]]] = {}
    for title in args.partitions:
        partition = PARTITIONS[title]
        datasets = {}
        tuned = {}
        first = load_config(base_config(args, 0, partition))
        datasets[0] = build_federated_data(first.data, 0)
        for mu in PROX_MUS:
            tuned[mu] = one_run(args, 0, partition, {"name": "fedprox", "mu": mu}, datasets[0])
        mu = max(PROX_MUS, key=lambda m: tuned[m]["final"])
        print(f"\n{title}: FedProx final accuracy on seed 0 by mu "
              f"{ {m: r['final'] for m, r in tuned.items()} } -> mu={mu:g}", flush=True)
        rows: dict[str, list[dict[str, Any]]] = {}
        for seed in range(args.seeds):
            if seed not in datasets:
                datasets[seed] = build_federated_data(load_config(base_config(args, seed, partition)).data, seed)
            for name, strategy in methods(mu).items():
                reuse = seed == 0 and strategy["name"] == "fedprox"  # runs are deterministic: the tuning run
                row = tuned[mu] if reuse else one_run(args, seed, partition, strategy, datasets[seed])
                rows.setdefault(name, []).append(row)
                print(f"  seed {seed} {name}: final {rows[name][-1]['final']:.4f} "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
            datasets.pop(seed)
        print_table(f"{title} ({args.model}, {args.rounds} rounds, {args.epochs} local epochs, batch "
                    f"{args.batch_size}, {args.seeds} seeds)", rows, args.target)
        curves[title] = {name: [r["curve"] for r in runs] for name, runs in rows.items()}
    if args.out is not None:
        plot(curves, args.out)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
