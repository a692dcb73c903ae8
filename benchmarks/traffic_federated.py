"""Federated traffic MLP: each training capture is a client that keeps its flows.

Compares FedAvg and FedProx (fedfleet's engine) with the same MLP trained centrally on
the pooled flows, on the random flow split and the split by capture, using the same
flows as benchmarks/traffic.py (cached extraction, ``Unspecified`` and classes under
20 flows left out) and the same preprocessing (ports normalised, the best MLP setting of the ablation).

Every federated run also reports the engine's update validation: how many client updates
were rejected (``updates_rejected`` of the run summary) and which captures sent them, read
from the run's ``rejections.jsonl``.

    python benchmarks/traffic_federated.py [--seeds 2] [--rounds 150]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from fedfleet.config import RunConfig, load_config
from fedfleet.traffic import NFSTREAM_SPEC, classification_metrics, extract_flows, filter_labels, fit_model
from fedfleet.traffic.evaluate import capture_split, random_split
from fedfleet.traffic.federated import FEDERATED_PREPROCESSING, train_federated

LABEL = NFSTREAM_SPEC.label or "application_category_name"
CACHE_DIR = Path.home() / ".cache" / "fedfleet" / "traffic"
REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--clients-per-round", type=int, default=20)
    parser.add_argument("--mlp-epochs", type=int, default=30)
    parser.add_argument("--sgd-epochs", type=int, default=40)
    args = parser.parse_args()
    shared = Path(os.environ.get("FEDFLEET_SHARED", REPO_ROOT.parent / "shared"))
    torch.set_num_threads(1)
    started = time.perf_counter()
    with threadpool_limits(1):
        extraction = extract_flows([shared / "data" / "traffic" / "pcaps"], cache_dir=CACHE_DIR)
        flows = filter_labels(extraction.flows, LABEL, ("Unspecified",), 20).reset_index(drop=True)
        rows = [row for seed in range(args.seeds) for row in one_seed(flows, seed, args)]
    print(f"\n### Federated MLP, {len(flows)} flows, mean of {args.seeds} seeds\n")
    print("| split | training | clients (per seed) | accuracy | macro-F1 | MB up | updates rejected |")
    print("|---|---|---|---|---|---|---|")
    for key in dict.fromkeys((row["split"], row["training"]) for row in rows):
        group = [row for row in rows if (row["split"], row["training"]) == key]
        mean = {name: np.mean([row[name] for row in group]) for name in ("accuracy", "macro_f1", "mb_up")}
        clients = " / ".join(str(row["clients"]) for row in group)
        rejected = (f"{sum(row['rejected'] for row in group)} of {sum(row['updates'] for row in group):,}"
                    if group[0]["updates"] else "–")
        print(f"| {key[0]} | {key[1]} | {clients} | {mean['accuracy']:.3f} | "
              f"{mean['macro_f1']:.3f} | {mean['mb_up']:.1f} | {rejected} |")
    federated = [row for row in rows if row["updates"]]
    print(f"\nupdates rejected over {len(federated)} federated runs: "
          f"{sum(row['rejected'] for row in federated)} of {sum(row['updates'] for row in federated):,}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def one_seed(flows: Any, seed: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for split, (train, test) in {"random flows": random_split(flows, LABEL, 0.25, seed),
                                 "by capture": capture_split(flows, 0.25, seed)}.items():
        central = fit_model(train, NFSTREAM_SPEC, "mlp", FEDERATED_PREPROCESSING,
                            {"epochs": args.mlp_epochs}, seed)
        rows.append(_row(split, "central (Adam, pooled flows)", 1, test, central.predict(test), 0.0))
        pooled = train.assign(site="all")  # one client holding every flow: plain SGD
        sgd = train_federated(pooled, test, NFSTREAM_SPEC, _config(seed, "fedavg", args.sgd_epochs, 1, 1),
                              site="site")
        rows.append(_row(split, f"central (SGD, {args.sgd_epochs} epochs, engine with 1 client)", 1,
                         test, sgd.model.predict(test), 0.0))
        for strategy in ("fedavg", "fedprox"):
            config = _config(seed, strategy, args.rounds, args.clients_per_round, 2)
            with tempfile.TemporaryDirectory() as run_dir:
                result = train_federated(train, test, NFSTREAM_SPEC, config, out_dir=run_dir)
                rejections = _read_rejections(Path(run_dir))
            summary = result.run.summary
            row = _row(split, f"{strategy}, {args.rounds} rounds x {args.clients_per_round}",
                       len(result.client_sizes), test, result.model.predict(test), summary["bytes_up"] / 1e6)
            row["rejected"] = int(summary["updates_rejected"])
            row["updates"] = int(summary["updates_rejected"] + summary["updates_accepted"])
            rows.append(row)
            _print_rejections(f"seed {seed} {split} {strategy}", row, train, result.client_sizes, rejections)
        print(f"  seed {seed} {split} done", flush=True)
    return rows


def _read_rejections(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "rejections.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _print_rejections(name: str, row: dict[str, Any], train: Any, sizes: list[int],
                      rejections: list[dict[str, Any]]) -> None:
    """Which clients (captures) had updates rejected, how often, and by which test."""
    captures = sorted(train["capture"].unique())  # client i is the i-th capture (train_federated)
    print(f"  {name}: {row['rejected']} of {row['updates']} updates rejected; client flows: "
          f"mean {np.mean(sizes):.1f}, median {np.median(sizes):.0f}, max {max(sizes)}", flush=True)
    by_client = collections.Counter(r["client_id"] for r in rejections)
    for client, count in by_client.most_common():
        flows = train[train["capture"] == captures[client]]
        reasons = collections.Counter(_test_of(r["reason"]) for r in rejections if r["client_id"] == client)
        labels = ", ".join(f"{label} {n}" for label, n in flows[LABEL].value_counts().items())
        plural = "s" if sizes[client] != 1 else ""
        print(f"    {captures[client]} ({sizes[client]} flow{plural}: {labels}): {count} rejected "
              f"({', '.join(f'{test} {n}' for test, n in reasons.items())})", flush=True)


def _test_of(reason: str) -> str:
    if "global model" in reason:
        return "global-norm cap"
    if "cohort median" in reason:
        return "cohort outlier"
    return reason.split(",")[0]


def _config(seed: int, strategy: str, rounds: int, cohort: int, local_epochs: int) -> RunConfig:
    return load_config({
        "seed": seed, "checkpoint_every": 0, "fleet": {"profile": "uniform"},
        "data": {"num_clients": cohort}, "strategy": {"name": strategy, "mu": 0.01},
        "train": {"rounds": rounds, "clients_per_round": cohort, "local_epochs": local_epochs,
                  "batch_size": 16, "lr": 0.05, "eval_every": rounds},
    })


def _row(split: str, training: str, clients: int, test: Any, predicted: Any, mb_up: float) -> dict[str, Any]:
    metrics = classification_metrics(test[LABEL], predicted)
    return {"split": split, "training": training, "clients": clients, "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"], "mb_up": mb_up, "rejected": 0, "updates": 0}


if __name__ == "__main__":
    main()
