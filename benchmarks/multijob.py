"""Multi-job FL: six scheduling policies for three concurrent jobs over one heterogeneous fleet.

Three jobs (configs/multijob/benchmark.yaml) train at once over 100 devices, 10 devices per job
per round, every device holding a 2-class shard partition of each job's data: LeNet-5 on
Fashion-MNIST, the FedAvg MLP on Fashion-MNIST and an MLP on scikit-learn's digits. The fleet is heterogeneous (speeds
log-uniform over a 20x range, log-normal bandwidths). To fit this machine each device keeps
``--per-device`` random samples of its Fashion-MNIST shards (digits: all of its ~13) and the
server evaluates on a fifth of the Fashion-MNIST test set. For every policy (random, greedy,
FedCS, genetic, BODS, RLDS) and seed: the virtual time until every job has reached its target,
each job's final accuracy, the mean accuracy of the jobs at a common virtual-time budget
(``--budget-s``), the mean planned cost of a round, the fairness variance, Jain's index of participation and the
policy's own planning time (mean ± std over seeds). Then the planning time alone on a
1,000-device, 5-job instance (no training).

    nice -n 10 python benchmarks/multijob.py [--seeds 3] [--rounds 40] [--per-device 200]
        [--budget-s 30] [--policies random,greedy,...] [--out DIR] [--scaling-only]

Seed 0's runs are written to DIR (default a temporary folder) with one comparison report.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedfleet.fl import FederatedData, build_federated_data
from fedfleet.fl.fleet import TimeModel, make_fleet
from fedfleet.fl.multijob import expected_times, job_run_config, load_multijob_config, run_multijob
from fedfleet.fl.multijob.config import MultiJobConfig
from fedfleet.fl.scheduling import POLICY_NAMES, PlanningProblem, build_policy
from fedfleet.report.runs import write_runs_report

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "multijob" / "benchmark.yaml"


def config(args: argparse.Namespace, seed: int, policy: str) -> MultiJobConfig:
    """configs/multijob/benchmark.yaml with this seed, policy and number of rounds."""
    rounds = [f"jobs.{index}.train.rounds={args.rounds}" for index in range(3)]
    return load_multijob_config(CONFIG, [f"seed={seed}", f"scheduler.name={policy}", "checkpoint_every=0",
                                         f"name=multijob-{policy}", *rounds])


def trimmed(data: FederatedData, per_device: int, seed: int) -> FederatedData:
    """Each device keeps ``per_device`` random samples of its partition."""
    generator = torch.Generator().manual_seed(seed)
    return FederatedData([c.subset(torch.randperm(len(c), generator=generator)[:per_device]) for c in data.clients],
                         data.test)


def datasets(args: argparse.Namespace, seed: int) -> list[FederatedData]:
    """The three jobs' federations of ``seed`` (the same for every policy)."""
    base = config(args, seed, "random")
    result = []
    for index in range(len(base.jobs)):
        run_config = job_run_config(base, index)
        result.append(trimmed(build_federated_data(run_config.data, run_config.seed), args.per_device, seed))
    return result


def accuracy_at(records: list[dict[str, Any]], moment: float) -> float:
    """A job's test accuracy at virtual time ``moment``: its last evaluation by then (chance, 0.1, before any)."""
    reached = [r["test_accuracy"] for r in records if r["virtual_time_s"] <= moment]
    return reached[-1] if reached else 0.1


def mean_std(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "never"
    text = f"{statistics.mean(present):.3g}" + (f" ± {statistics.stdev(present):.2g}" if len(present) > 1 else "")
    return text + (f" ({len(present)}/{len(values)})" if len(present) < len(values) else "")


def accuracy_table(args: argparse.Namespace, out: Path) -> None:
    rows: dict[str, list[dict[str, Any]]] = {p: [] for p in args.policies}
    for seed in range(args.seeds):
        federations = datasets(args, seed)
        for policy in args.policies:
            started = time.perf_counter()
            run_dir = out / policy if seed == 0 else None
            result = run_multijob(config(args, seed, policy), run_dir, datasets=federations)
            at_budget = [accuracy_at(job.state.records, args.budget_s) for job in result.runner.jobs]
            rows[policy].append({**result.summary, "accuracy_at_budget": statistics.mean(at_budget),
                                 "planned_cost": statistics.mean(r["cost"] for r in result.runner.extra["schedule"])})
            print(f"  seed {seed} {policy:7s} all targets {result.summary['time_to_all_targets_s']}  "
                  f"wall {time.perf_counter() - started:.0f}s", flush=True)
    names = [job.name for job in config(args, 0, "random").jobs]
    header = ["policy", "time to all targets (s)", *[f"{n} acc" for n in names],
              f"mean acc at {args.budget_s:g} s", "planned cost", "fairness var", "Jain", "busy share",
              "planning ms/round"]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for policy, summaries in rows.items():
        cells = [policy, mean_std([s["time_to_all_targets_s"] for s in summaries])]
        cells += [mean_std([s["jobs"][n]["final_accuracy"] for s in summaries]) for n in names]
        keys = ("accuracy_at_budget", "planned_cost", "fairness_variance", "jain_index", "device_busy_share")
        cells += [mean_std([s[key] for s in summaries]) for key in keys]
        cells.append(mean_std([1000 * s["planning_s_per_round"] for s in summaries]))
        print("| " + " | ".join(cells) + " |")
    report = write_runs_report([out / p for p in args.policies], out / "report.html")
    print(f"\nseed 0 runs and report: {report}")


def scaling_row(args: argparse.Namespace) -> None:
    """Planning time per round on 1,000 devices and 5 jobs (expected times from the fleet's time model)."""
    devices, jobs, k = 1000, 5, 10
    fleet = make_fleet(config(args, 0, "random").fleet, devices, 0)
    rng = np.random.default_rng(0)
    sizes = [(60, 107_786), (60, 199_210), (13, 55_210), (120, 107_786), (30, 199_210)]  # samples, parameters
    times = [expected_times(TimeModel(0.2), fleet, np.full(devices, n), 1, p) for n, p in sizes]
    print(f"\nplanning time on {devices} devices, {jobs} jobs, {k} devices per job per round (ms per plan, "
          f"mean over {args.scaling_rounds} rounds x {jobs} jobs)\n\n| policy | ms per plan |\n|---|---|")
    for name in args.policies:
        base = config(args, 0, name).scheduler
        policy = build_policy(base, jobs, 0)
        counts = np.zeros((jobs, devices), dtype=np.int64)
        spent = []
        for round_index in range(1, args.scaling_rounds + 1):
            busy: set[int] = set()
            for job in range(jobs):
                idle = np.array([d for d in range(devices) if d not in busy])
                problem = PlanningProblem(job, round_index, idle, k, times[job], counts[job], base.alpha, base.beta)
                started = time.perf_counter()
                chosen = policy.plan(problem, rng)
                spent.append(time.perf_counter() - started)
                busy |= set(chosen.tolist())
                counts[job, chosen] += 1
        print(f"| {name} | {1000 * statistics.mean(spent):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--per-device", type=int, default=200)
    parser.add_argument("--policies", type=lambda s: s.split(","), default=list(POLICY_NAMES))
    parser.add_argument("--budget-s", type=float, default=30.0)
    parser.add_argument("--scaling-rounds", type=int, default=5)
    parser.add_argument("--scaling-only", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.scaling_only:
        out = args.out or Path(tempfile.mkdtemp(prefix="multijob-"))
        accuracy_table(args, out)
    scaling_row(args)


if __name__ == "__main__":
    main()
