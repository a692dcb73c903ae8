"""Asynchronous against synchronous FL on a heterogeneous, failing fleet, at the same number of client updates.

Fashion-MNIST split Dirichlet(0.5) over 100 devices, the FedAvg paper's MLP (2 x 200), speeds
log-uniform over a 20x range, 10 % of the dispatched tasks never return. Every method gets
the same budget of client updates received: sync FedAvg runs ``--updates`` / 10 rounds of 10
devices and the others get as many received updates as it got. Without a deadline the sync
server waits for every device that returns and times lost ones out after 1.5 x the slowest
task time; with ``deadline_s`` it closes the round at the fleet's median task time and gets as
many more rounds as the devices it cuts off. FedAsync and FedASMU (default mix_scale mu = 1,
and mu = 10) make one version per update, FedBuff (K = 10) one per ten; async methods keep 10
devices busy. For each method and seed: the virtual time at which the test accuracy first
reaches ``--target``, and the final accuracy (mean ± std over seeds). Then the wall-clock cost
per client update of the engine in each mode, measured with a single final evaluation.

    nice -n 10 python benchmarks/async_vs_sync.py [--seeds 3] [--updates 600] [--target 0.7] [--out DIR]
        [--cost-updates 300] [--cost-repeats 3] [--skip-accuracy] [--ablation]

Seed 0's runs are written to DIR with an HTML report (accuracy against virtual time).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fedfleet.config import RunConfig, load_config
from fedfleet.fl import FederatedData, build_federated_data, run_simulation
from fedfleet.fl.fleet import TimeModel, make_fleet
from fedfleet.fl.params import num_params
from fedfleet.models import build_model
from fedfleet.report.runs import write_runs_report

COHORT = 10


def base_config(seed: int) -> dict[str, Any]:
    return {
        "name": "async-vs-sync",
        "seed": seed,
        "data": {"dataset": "fashion_mnist", "num_clients": 100, "partition": "dirichlet", "alpha": 0.5,
                 "test_fraction": 0.2},
        "model": {"name": "mlp"},
        "train": {"rounds": 1, "clients_per_round": COHORT, "batch_size": 32, "lr": 0.05, "task_timeout_s": 1e6},
        "fleet": {"profile": "heterogeneous", "speed_spread": 20.0, "failure_rate": 0.1},
        "checkpoint_every": 0,
    }


def task_times(config: RunConfig, data: FederatedData) -> np.ndarray:
    """Every device's noise-free task time: download + compute + upload."""
    fleet = make_fleet(config.fleet, len(data.clients), config.seed)
    sizes = data.num_samples()
    quiet, rng = TimeModel(0.0), np.random.default_rng(0)
    size = num_params(build_model(config.model.name, data.input_shape, data.num_classes))
    return np.array([quiet.update_time(d, int(sizes[d.device_id]), 1, size, rng) for d in fleet])


def methods(updates: int, timeout: float, deadline: float, on_time: float,
            ablation: bool = False) -> dict[str, dict[str, Any]]:
    """Overrides per method, each spending about ``updates`` client updates.

    ``on_time`` is the expected share of a cohort that beats the deadline, so the deadline run
    gets more rounds for the same number of received updates.
    """
    rounds = updates // COHORT
    deadline_rounds = round(updates / (COHORT * 0.9 * on_time))
    chosen = {
        "sync FedAvg": {"train": {"rounds": rounds, "task_timeout_s": timeout}},
        "sync FedAvg + deadline": {"train": {"rounds": deadline_rounds, "deadline_s": deadline,
                                             "task_timeout_s": timeout}},
        "FedAsync": {"train": {"mode": "async", "rounds": updates, "eval_every": COHORT, "task_timeout_s": timeout},
                     "strategy": {"name": "fedasync", "alpha": 0.6, "staleness": "polynomial", "staleness_a": 0.5}},
        "FedBuff": {"train": {"mode": "async", "rounds": rounds, "task_timeout_s": timeout},
                    "strategy": {"name": "fedbuff", "buffer_size": COHORT, "server_lr": 1.0}},
        "FedASMU": {"train": {"mode": "async", "rounds": updates, "eval_every": COHORT, "task_timeout_s": timeout},
                    "strategy": {"name": "fedasmu"}},
        "FedASMU mu=10": {"train": {"mode": "async", "rounds": updates, "eval_every": COHORT,
                                    "task_timeout_s": timeout},
                          "strategy": {"name": "fedasmu", "mix_scale": 10.0}},
    }
    if ablation:  # FedASMU mu=10 without its device-side refresh, and without learning lambda, sigma, iota
        asmu = chosen["FedASMU mu=10"]
        chosen["FedASMU mu=10, no refresh"] = {**asmu, "strategy": {**asmu["strategy"], "refresh_at": 0.0}}
        chosen["FedASMU mu=10, meta_lr=0"] = {**asmu, "strategy": {**asmu["strategy"], "meta_lr": 0.0}}
    return chosen


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, values in extra.items():
        out[section] = {**out.get(section, {}), **values}
    return out


def accuracy_runs(seeds: int, updates: int, target: float, out: Path, ablation: bool) -> None:
    rows: dict[str, list[dict[str, Any]]] = {}
    report_dirs = []
    for seed in range(seeds):
        config = load_config(base_config(seed))
        data = build_federated_data(config.data, seed)
        times = task_times(config, data)
        timeout, deadline = float(1.5 * times.max()), float(np.median(times))
        on_time = float(np.mean(times * (1 + config.fleet.fluctuation) <= deadline))  # noise at its mean
        budget = updates
        for name, extra in methods(updates, timeout, deadline, on_time, ablation).items():
            if name != "sync FedAvg":  # the others get as many received updates as sync FedAvg got
                extra = methods(budget, timeout, deadline, on_time, ablation)[name]
            run_config = load_config(merged(base_config(seed), extra), {"train": {"target_accuracy": target}})
            slug = "".join(c for c in name.replace(" ", "_") if c.isalnum() or c == "_").lower()
            folder = out / slug if seed == 0 else None
            result = run_simulation(run_config, data=data, out_dir=folder, overwrite=True)
            s = result.summary
            if name == "sync FedAvg":
                budget = s["updates_accepted"]
            rows.setdefault(name, []).append({
                "final": s["final_accuracy"], "time_to_target": s["time_to_target_s"],
                "virtual_time": s["virtual_time_s"], "updates": s["updates_accepted"],
            })
            print(f"seed {seed} {name:24s} final {s['final_accuracy']:.4f}  to {target}: "
                  f"{s['time_to_target_s'] if s['time_to_target_s'] is None else round(s['time_to_target_s'])} s  "
                  f"virtual {s['virtual_time_s']:.0f} s  updates {s['updates_accepted']}", flush=True)
            if folder is not None:
                report_dirs.append(folder)
        print(f"seed {seed}: deadline {deadline:.1f} s, timeout {timeout:.1f} s, task times "
              f"{times.min():.1f}..{times.max():.1f} s", flush=True)
    print(f"\n| method | final accuracy (mean ± std) | time to {target} (s, mean over seeds reaching it) "
          "| reached | virtual time (s) | updates |")
    print("|---|---|---|---|---|---|")
    for name, results in rows.items():
        finals = [r["final"] for r in results]
        reached = [r["time_to_target"] for r in results if r["time_to_target"] is not None]
        print(f"| {name} | {statistics.mean(finals):.4f} ± {statistics.stdev(finals) if len(finals) > 1 else 0:.4f} "
              f"| {statistics.mean(reached):.0f} | {len(reached)}/{len(results)} "
              f"| {statistics.mean(r['virtual_time'] for r in results):.0f} "
              f"| {statistics.mean(r['updates'] for r in results):.0f} |" if reached else
              f"| {name} | {statistics.mean(finals):.4f} ± {statistics.stdev(finals) if len(finals) > 1 else 0:.4f} "
              f"| — | 0/{len(results)} | {statistics.mean(r['virtual_time'] for r in results):.0f} "
              f"| {statistics.mean(r['updates'] for r in results):.0f} |")
    report = write_runs_report(report_dirs, out / "report.html")
    print(f"\nreport (seed 0): {report}")


def engine_cost(updates: int, repeats: int) -> None:
    """Wall seconds per client update, one final evaluation, no faults: sync FedAvg vs async FedBuff and FedAsync.

    The modes run interleaved ``repeats`` times; the table shows the median.
    """
    config = load_config(base_config(0))
    data = build_federated_data(config.data, 0)
    rounds = updates // COHORT
    plain = {"fleet": {"failure_rate": 0.0}}
    sides = {
        "sync FedAvg": {"train": {"rounds": rounds, "eval_every": rounds}, **plain},
        "async FedBuff": {"train": {"mode": "async", "rounds": rounds, "eval_every": rounds},
                          "strategy": {"name": "fedbuff", "buffer_size": COHORT}, **plain},
        "async FedAsync": {"train": {"mode": "async", "rounds": updates, "eval_every": updates},
                           "strategy": {"name": "fedasync"}, **plain},
    }
    walls: dict[str, list[float]] = {name: [] for name in sides}
    done: dict[str, int] = {}
    for _ in range(repeats):
        for name, extra in sides.items():
            run_config = load_config(merged(base_config(0), extra))
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                result = run_simulation(run_config, data=data, out_dir=Path(folder) / "run")
                walls[name].append(time.perf_counter() - started)
            done[name] = result.summary["updates_accepted"]
    print(f"\n| mode | client updates | median wall s ({repeats} runs) | ms per update |\n|---|---|---|---|")
    for name, times in walls.items():
        wall = statistics.median(times)
        print(f"| {name} | {done[name]} | {wall:.2f} | {1000 * wall / done[name]:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=600)
    parser.add_argument("--target", type=float, default=0.7)
    parser.add_argument("--cost-updates", type=int, default=300)
    parser.add_argument("--cost-repeats", type=int, default=3)
    parser.add_argument("--skip-accuracy", action="store_true", help="only measure the wall-clock cost")
    parser.add_argument("--ablation", action="store_true", help="add FedASMU mu=10 without refresh / learning")
    parser.add_argument("--out", type=Path, default=Path("runs/async_vs_sync"))
    args = parser.parse_args()
    if not args.skip_accuracy:
        accuracy_runs(args.seeds, args.updates, args.target, args.out, args.ablation)
    engine_cost(args.cost_updates, args.cost_repeats)


if __name__ == "__main__":
    main()
