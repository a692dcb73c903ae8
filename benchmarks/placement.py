"""Layer placement: genetic plans against the optimum (brute force, DP) and baselines.

Random problems: small ones are solved exactly by brute force, 50-layer x 4-type ones by
the DP (exact, shared instance counts included). Real
profiles: the shipped CTR and transformer tables on the cloud catalog and the built-in
CNN/LeNet-5 profiled on this CPU with the lab catalog. Prints markdown tables.

    python benchmarks/placement.py [--small 12] [--large 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fedfleet.models import build_model
from fedfleet.placement import (
    PLANNERS,
    PlacementInfeasible,
    PlacementProblem,
    load_catalog,
    load_profile_table,
    profile_torch_model,
)
from fedfleet.placement.planners import (
    BruteForcePlanner,
    DynamicProgrammingPlanner,
    GeneticPlanner,
    Planner,
)
from fedfleet.placement.synthetic import random_catalog, random_profile, with_reachable_target

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "placement"
BASELINES = ("greedy", "rl", "cpu-only", "gpu-only")
Case = tuple[PlacementProblem, Planner, float]  # problem, its exact solution, seconds to solve
BRUTE_LIMIT = 10**6  # stage plans: 10 layers x 3 types have 3 x 4^9 = 786k (same-type splits included)


def brute_force() -> Planner:
    return BruteForcePlanner(max_schemes=BRUTE_LIMIT)


def timed_fit(planner: Planner, problem: PlacementProblem) -> tuple[Planner | None, float]:
    started = time.perf_counter()
    try:
        planner.fit(problem)
    except PlacementInfeasible:
        return None, time.perf_counter() - started
    return planner, time.perf_counter() - started


def random_problems(count: int, layers: int, types: int, seed: int, exact: Callable[[], Planner]) -> list[Case]:
    """The first ``count`` feasible random problems with their optimal plan and its solve time."""
    found: list[Case] = []
    attempt = seed
    while len(found) < count:
        rng = np.random.default_rng([layers, types, attempt])
        attempt += 1
        profile = random_profile(layers, rng)
        problem = PlacementProblem(profile, with_reachable_target(profile, random_catalog(types, rng), rng))
        solved, seconds = timed_fit(exact(), problem)
        if solved is not None:
            found.append((problem, solved, seconds))
    return found


def gap_row(label: str, gaps: list[float], times: list[float], extra: str = "") -> str:
    within = sum(g <= 0.02 for g in gaps)
    return (f"| {label} | {len(gaps)} | {within}/{len(gaps)} | {100 * statistics.median(gaps):.2f} | "
            f"{100 * max(gaps):.2f} | {statistics.median(times):.3f} | {max(times):.3f} |{extra}")


def compare_with_optimum(cases: list[Case], label: str) -> list[str]:
    rows = []
    variants = {"genetic": {}, "genetic, no local search": {"local_search": False}}
    for name, params in variants.items():
        gaps, times = [], []
        for index, (problem, optimum, _) in enumerate(cases):
            solved, seconds = timed_fit(GeneticPlanner(random_state=index, **params), problem)
            cost = solved.plan_.cost if solved is not None else np.inf
            gaps.append(cost / optimum.plan_.cost - 1)
            times.append(seconds)
        rows.append(gap_row(f"{label}: {name}", gaps, times))
    exact_times = [seconds for *_, seconds in cases]
    rows.append(gap_row(f"{label}: reference ({type(cases[0][1]).__name__})", [0.0] * len(cases), exact_times))
    return rows


def baseline_ratios(cases: list[Case]) -> list[str]:
    """Baseline cost and throughput relative to the genetic plan, per baseline."""
    genetic = [GeneticPlanner(random_state=i).fit(problem).plan_ for i, (problem, _, _) in enumerate(cases)]
    rows = []
    for name in BASELINES:
        cost_ratios, speed_ratios, times, failed = [], [], [], 0
        for (problem, _, _), plan in zip(cases, genetic, strict=True):
            solved, seconds = timed_fit(PLANNERS.build(name), problem)
            times.append(seconds)
            if solved is None:
                failed += 1
                continue
            cost_ratios.append(solved.plan_.cost / plan.cost)
            speed_ratios.append(plan.throughput / solved.plan_.throughput)
        summary = (f"{statistics.median(cost_ratios):.2f} | {max(cost_ratios):.2f} | "
                   f"{statistics.median(speed_ratios):.2f}" if cost_ratios else "- | - | -")
        rows.append(f"| {name} | {len(cases) - failed}/{len(cases)} | {summary} | {statistics.median(times):.3f} |")
    return rows


def real_profiles() -> list[tuple[str, PlacementProblem]]:
    cloud = load_catalog(CONFIGS / "cloud.yaml")
    lab = load_catalog(CONFIGS / "lab.yaml")
    shape = (1, 28, 28)
    return [
        ("ctr-dnn / cloud", PlacementProblem(load_profile_table(CONFIGS / "ctr_dnn.yaml"), cloud)),
        ("transformer / cloud, 8k samples/s",
         PlacementProblem(load_profile_table(CONFIGS / "transformer_small.csv"),
                          cloud.with_job(batch_size=256, samples=1e8, throughput_target=8000))),
        *[(f"{name} (measured here) / lab",
           PlacementProblem(profile_torch_model(build_model(name, shape, 10), shape, name=name,
                                                batch_size=lab.job.batch_size), lab))
          for name in ("cnn", "lenet5")],
    ]


def real_rows() -> list[str]:
    rows = []
    for label, problem in real_profiles():
        cells = []
        for name in ("brute" if problem.num_layers <= 10 else "dp", "genetic", *BASELINES):
            params: dict[str, int] = {"random_state": 0} if name in ("genetic", "rl") else {}
            if name == "brute":
                params = {"max_schemes": BRUTE_LIMIT}
            solved, _ = timed_fit(PLANNERS.build(name, **params), problem)
            if solved is None:
                cells.append("infeasible")
            else:
                plan = solved.plan_
                cells.append(f"{plan.cost:.3g} ({len(plan.stages)} st, {plan.throughput:.3g}/s)")
        rows.append(f"| {label} | {problem.num_layers} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=12, help="instances per small size")
    parser.add_argument("--large", type=int, default=30, help="50-layer x 4-type instances")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    header = ("| instances | n | within 2 % | median gap % | max gap % | median time s | max time s |\n"
              "|---|---|---|---|---|---|---|")
    print("### Genetic plan cost against the optimum\n")
    print(header)
    for layers, types in ((6, 3), (8, 4), (10, 3)):
        cases = random_problems(args.small, layers, types, args.seed, brute_force)
        for row in compare_with_optimum(cases, f"{layers} layers x {types} types"):
            print(row, flush=True)
    large = random_problems(args.large, 50, 4, args.seed, DynamicProgrammingPlanner)
    for row in compare_with_optimum(large, "50 layers x 4 types"):
        print(row, flush=True)
    bound = sum(bool(getattr(optimum, "tracked_types_", ())) for _, optimum, _ in large)
    print(f"\nLarge instances: {len(large)}; on {bound} of them shared instance counts bound (the DP "
          "tracked them in its state).\n")

    print("### Baselines against the genetic plan (50 layers x 4 types)\n")
    print("| baseline | feasible | median cost ratio | max cost ratio | median genetic/baseline throughput "
          "| median time s |")
    print("|---|---|---|---|---|---|")
    for row in baseline_ratios(large):
        print(row, flush=True)

    print("\n### Real profiles: cost (stages, throughput)\n")
    print("| model / catalog | layers | optimum (brute or dp) | genetic | " + " | ".join(BASELINES) + " |")
    print("|---|---|---|---|" + "---|" * len(BASELINES))
    for row in real_rows():
        print(row, flush=True)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
