"""Asynchronous FL on worker processes: in-flight tasks trained side by side, against one process.

Fashion-MNIST over 100 clients (Dirichlet 0.5), FedBuff (buffer 5) or FedAsync, 10 devices in
flight, ``--versions`` global versions, 1 local epoch, batch 32, the CNN; the same run with
``backend.workers`` 1 and 2 (and Ray with 2 actors with ``--ray``), interleaved, median of
``--repeats`` wall times. The runs must agree exactly (same metrics); the table also gives the
mean number of tasks per backend call.

    nice -n 10 python benchmarks/async_workers.py [--versions 60] [--repeats 2] [--strategy fedbuff] [--ray]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from fedfleet.config import load_config
from fedfleet.fl import build_federated_data
from fedfleet.fl.simulation import build_runner
from fedfleet.threads import torch_threads


def config(args: argparse.Namespace, backend: dict[str, Any]) -> dict[str, Any]:
    strategy = {"name": args.strategy, **({"buffer_size": 5} if args.strategy == "fedbuff" else {})}
    return {"name": "async-workers", "seed": 0,
            "data": {"dataset": "fashion_mnist", "num_clients": 100, "partition": "dirichlet", "alpha": 0.5},
            "model": {"name": args.model},
            "train": {"mode": "async", "rounds": args.versions, "clients_per_round": 10, "lr": 0.05,
                      "eval_every": args.versions},
            "strategy": strategy, "backend": backend, "checkpoint_every": 0}


def timed_run(args: argparse.Namespace, backend: dict[str, Any], data: Any) -> tuple[float, float, float]:
    """(wall seconds, final accuracy, mean tasks per backend call) of one run."""
    resolved = load_config(config(args, backend))
    runner = build_runner(resolved, data=data)
    batches: list[int] = []
    train = runner.parts.backend.run
    runner.parts.backend.run = lambda tasks: batches.append(len(tasks)) or train(tasks)  # type: ignore[method-assign]
    started = time.perf_counter()
    with torch_threads(resolved.backend.threads):  # as run_simulation: one thread per process
        summary = runner.run()
    return time.perf_counter() - started, summary["final_accuracy"], statistics.mean(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--strategy", choices=["fedbuff", "fedasync"], default="fedbuff")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--ray", action="store_true")
    args = parser.parse_args()
    backends = {"1 process": {"workers": 1}, "2 worker processes": {"workers": 2}}
    if args.ray:
        backends["Ray, 2 actors"] = {"name": "ray", "workers": 2}
    data = build_federated_data(load_config(config(args, {})).data, 0)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in backends}
    for _ in range(args.repeats):
        for name, backend in backends.items():
            results[name].append(timed_run(args, backend, data))
            print(f"  {name}: {results[name][-1][0]:.1f} s", flush=True)
    base = statistics.median(r[0] for r in results["1 process"])
    print(f"\n## async {args.strategy}, {args.model}, {args.versions} versions, 10 in flight")
    print("| backend | wall s (median) | speed-up | final accuracy | tasks per backend call |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        print(f"| {name} | {wall:.1f} | {base / wall:.2f}x | {runs[0][1]:.4f} | {runs[0][2]:.2f} |")


if __name__ == "__main__":
    main()
