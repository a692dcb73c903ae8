"""Simulation speed: one FedAvg workload run by a plain PyTorch loop, fedfleet and Flower, side by side.

Fashion-MNIST over 100 clients (Dirichlet 0.5), 10 clients per round, 20 rounds, 1 local epoch,
batch 32, lr 0.05, one evaluation at the end, with the models of ``speed_workload.py`` (the MLP
784-200-10 and a small CNN), the same data split, the same cohorts and the same initial weights for
every runner. Runners, each a separate process (whole-process wall time includes start-up and data
loading from one shared ``.npz``):

- ``plain``: a hand-written FedAvg loop in one process on one thread (the floor);
- ``fedfleet-seq``: ``run_simulation`` with ``backend.workers=1``;
- ``fedfleet-workers``: ``backend.workers=auto`` (one worker process per core);
- ``fedfleet-workers-summed``: the same with ``backend.sum_updates=true`` (one weighted sum per worker);
- ``fedfleet-vectorized``: ``backend.vectorize=true`` (a round's clients trained at once with torch.func);
- ``fedfleet-ray``: ``backend.name=ray`` with Ray started on this machine, one actor per core
  (``fedfleet-ray-summed``: with ``backend.sum_updates=true``);
- ``flower``: Flower's simulation engine (``flwr[simulation]==1.42.0``), run by
  ``flower_speed.py`` with the Python given by ``--flower-python`` (an environment of its own,
  see docs/benchmarks.md); left out when none is given.

Per runner: whole-process wall time, the training loop's own time, client updates per second,
peak memory of the whole process tree (the sum of each process's proportional set size, PSS,
sampled every 0.2 s: pages that forked workers share with their parent are split between them,
not counted once per process) and the final test accuracy; median
of ``--repeats`` interleaved repeats, with ratios to ``plain`` and to ``flower``. Then a scaling
table for fedfleet with workers: 1,000 and 10,000 clients with 100 per round (MLP, ``--scale-rounds``
rounds), time per client update and peak memory.

    nice -n 10 python benchmarks/simulation_speed.py [--repeats 3] [--models mlp,cnn]
        [--flower-python /path/to/flower-env/bin/python] [--scale-rounds 3] [--skip-scaling]
        [--runners fedfleet-seq,fedfleet-workers,...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import speed_workload as workload
import torch

HERE = Path(__file__).resolve().parent
FEDFLEET_BACKENDS = {"fedfleet-seq": {"workers": 1}, "fedfleet-workers": {"workers": "auto"},
                     "fedfleet-workers-summed": {"workers": "auto", "sum_updates": True},
                     "fedfleet-vectorized": {"vectorize": True}, "fedfleet-ray": {"name": "ray", "workers": "auto"},
                     "fedfleet-ray-summed": {"name": "ray", "workers": "auto", "sum_updates": True}}
FEDFLEET_RUNNERS = tuple(FEDFLEET_BACKENDS)


def write_workload(path: Path, num_clients: int, per_round: int, rounds: int) -> None:
    """Fashion-MNIST split by fedfleet's Dirichlet(0.5) partitioner, and every round's cohort."""
    from fedfleet.config import load_config
    from fedfleet.fl import build_federated_data

    config = load_config(None, {"data": {"dataset": "fashion_mnist", "num_clients": num_clients,
                                         "partition": "dirichlet", "alpha": 0.5},
                                "train": {"clients_per_round": per_round}})
    data = build_federated_data(config.data, config.seed)
    offsets = np.cumsum([0] + [len(c) for c in data.clients])
    rng = np.random.default_rng(0)
    cohorts = np.stack([np.sort(rng.choice(num_clients, per_round, replace=False)) for _ in range(rounds)])
    workload.save(path, torch.cat([c.x for c in data.clients]).numpy(), torch.cat([c.y for c in data.clients]).numpy(),
                  offsets, cohorts, data.test.x.numpy(), data.test.y.numpy())


def run_plain(data: workload.Workload, model_name: str) -> dict[str, Any]:
    model = workload.initial_model(model_name)
    started = time.perf_counter()
    for round_index, cohort in enumerate(data.cohorts):
        global_state = [p.detach().clone() for p in model.parameters()]
        totals = [torch.zeros_like(p) for p in global_state]
        sizes = [len(data.client(int(c))[0]) for c in cohort]
        for client, size in zip(cohort, sizes, strict=True):
            with torch.no_grad():
                for param, value in zip(model.parameters(), global_state, strict=True):
                    param.copy_(value)
            x, y = data.client(int(client))
            workload.local_sgd(model, x, y, torch.Generator().manual_seed(1000 * round_index + int(client)))
            for total, param, value in zip(totals, model.parameters(), global_state, strict=True):
                total.add_(param.detach() - value, alpha=size / sum(sizes))
        with torch.no_grad():
            for param, total, value in zip(model.parameters(), totals, global_state, strict=True):
                param.copy_(value + total)
    accuracy = workload.accuracy(model, data.test_x, data.test_y)
    return {"loop_s": time.perf_counter() - started, "accuracy": accuracy, "updates": data.cohorts.size}


class ReplayedCohorts:
    """A selector that takes each round's cohort from the workload."""

    def __init__(self, cohorts: np.ndarray) -> None:
        self.cohorts = cohorts

    def select(self, round_index: int, available: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        return self.cohorts[round_index - 1]


def run_fedfleet(data: workload.Workload, model_name: str, backend: dict[str, Any]) -> dict[str, Any]:
    from fedfleet.config import load_config
    from fedfleet.data.datasets import ArrayDataset
    from fedfleet.fl import FederatedData, run_simulation

    classes = tuple(str(i) for i in range(10))
    clients = [ArrayDataset(*data.client(c), classes) for c in range(data.num_clients)]
    federation = FederatedData(clients, ArrayDataset(data.test_x, data.test_y, classes))
    rounds, per_round = data.cohorts.shape
    config = load_config(None, {
        "data": {"dataset": "fashion_mnist", "num_clients": data.num_clients},
        "train": {"rounds": rounds, "clients_per_round": per_round, "batch_size": workload.BATCH_SIZE,
                  "lr": workload.LR, "local_epochs": workload.EPOCHS, "eval_every": rounds,
                  "target_accuracy": None},
        "backend": backend, "checkpoint_every": 0})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = run_simulation(config, federation, workload.initial_model(model_name), out_dir=out,
                                selector=ReplayedCohorts(data.cohorts))
    return {"loop_s": time.perf_counter() - started, "accuracy": result.history[-1]["test_accuracy"],
            "updates": data.cohorts.size}


def child(args: argparse.Namespace) -> None:
    """One runner in this process; prints its result as one JSON line."""
    torch.set_num_threads(1)
    data = workload.load(args.workload)
    if args.runner == "plain":
        result = run_plain(data, args.model)
    else:
        result = run_fedfleet(data, args.model, FEDFLEET_BACKENDS[args.runner])
    print(json.dumps(result))


def tree_memory(process: psutil.Process) -> int:
    """Bytes the process tree holds: the sum of each member's proportional set size (shared pages split)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_full_info().pss
    return total


def measure(command: list[str]) -> dict[str, Any]:
    """Run ``command``; its whole-process wall time, peak tree RSS and the JSON line it printed last."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watched, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, tree_memory(watched))
        time.sleep(0.2)
    wall = time.perf_counter() - started
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return {**result, "wall_s": wall, "peak_rss": peak}


def command(runner: str, model: str, path: Path, flower_python: str | None) -> list[str]:
    if runner == "flower":
        assert flower_python is not None
        return [flower_python, str(HERE / "flower_speed.py"), "--workload", str(path), "--model", model]
    return [sys.executable, str(Path(__file__).resolve()), "--runner", runner, "--workload", str(path),
            "--model", model]


def ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}x" if reference else "–"


def speed_table(args: argparse.Namespace, folder: Path) -> None:
    path = folder / "workload.npz"
    write_workload(path, 100, workload.PER_ROUND, workload.ROUNDS)
    runners = ["plain", *args.runners] + (["flower"] if args.flower_python else [])
    for model in args.models:
        samples: dict[str, list[dict[str, Any]]] = {r: [] for r in runners}
        for repeat in range(args.repeats):
            for runner in runners:
                samples[runner].append(measure(command(runner, model, path, args.flower_python)))
                print(f"  {model} repeat {repeat} {runner}: {samples[runner][-1]['wall_s']:.1f} s", flush=True)
        medians = {r: {k: statistics.median(s[k] for s in runs) for k in ("wall_s", "loop_s", "peak_rss", "accuracy")}
                   for r, runs in samples.items()}
        plain, flower = medians["plain"], medians.get("flower")
        print(f"\n{model}: median of {args.repeats} interleaved repeats, {workload.ROUNDS * workload.PER_ROUND} "
              "client updates\n")
        print("| runner | process s | loop s | updates/s | peak PSS MiB | accuracy | process vs plain | "
              "process vs Flower | loop vs Flower | PSS vs Flower |\n|---|---|---|---|---|---|---|---|---|---|")
        for runner, m in medians.items():
            updates = workload.ROUNDS * workload.PER_ROUND / m["loop_s"]
            print(f"| {runner} | {m['wall_s']:.1f} | {m['loop_s']:.1f} | {updates:.0f} | {m['peak_rss'] / 2**20:.0f} | "
                  f"{m['accuracy']:.3f} | {ratio(m['wall_s'], plain['wall_s'])} | "
                  f"{ratio(m['wall_s'], flower and flower['wall_s'])} | "
                  f"{ratio(m['loop_s'], flower and flower['loop_s'])} | "
                  f"{ratio(m['peak_rss'], flower and flower['peak_rss'])} |", flush=True)


def scaling_table(args: argparse.Namespace, folder: Path) -> None:
    print(f"\nscaling, fedfleet with workers, MLP, 100 clients per round, {args.scale_rounds} rounds\n")
    print("| clients | runner | process s | ms per client update | peak PSS MiB |\n|---|---|---|---|---|")
    for clients in (1000, 10000):
        path = folder / f"workload-{clients}.npz"
        write_workload(path, clients, 100, args.scale_rounds)
        for runner in ("fedfleet-workers", "fedfleet-workers-summed"):
            m = measure(command(runner, "mlp", path, None))
            print(f"| {clients} | {runner} | {m['wall_s']:.1f} | {1000 * m['loop_s'] / m['updates']:.2f} | "
                  f"{m['peak_rss'] / 2**20:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", type=lambda s: s.split(","), default=["mlp", "cnn"])
    parser.add_argument("--flower-python", default=None)
    parser.add_argument("--scale-rounds", type=int, default=3)
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--runners", type=lambda s: s.split(","), default=list(FEDFLEET_RUNNERS),
                        help=f"fedfleet runners to time beside plain (default all: {','.join(FEDFLEET_RUNNERS)})")
    parser.add_argument("--runner", choices=["plain", *FEDFLEET_RUNNERS], help=argparse.SUPPRESS)
    parser.add_argument("--workload", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=list(workload.MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = sorted(set(args.runners) - set(FEDFLEET_RUNNERS))
    if unknown:
        parser.error(f"unknown runner(s) {unknown}; choose from {', '.join(FEDFLEET_RUNNERS)}")
    if args.runner:
        child(args)
        return
    with tempfile.TemporaryDirectory() as folder:
        speed_table(args, Path(folder))
        if not args.skip_scaling:
            scaling_table(args, Path(folder))


if __name__ == "__main__":
    main()
