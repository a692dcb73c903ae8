"""Vertical FL robustness: a Lipschitz top against an unconstrained top of the same size.

For each data set the split model is trained with the certified top (bound L) and with an
unconstrained interaction path and top of the same sizes, the same seed and SGD settings;
an MLP on all features in one place gives the centralised clean accuracy. The passive
party is then attacked at test time (Gaussian noise, PGD, zeros, scaling; sizes relative
to each model's median clean embedding norm) and during training (corrupted embeddings on
a fraction of batches). The bound is checked on random and adversarial embedding pairs.

Run:  .venv/bin/python benchmarks/vertical_robustness.py [--out runs/vertical-bench]
Scale (to fit ~10 minutes on 2 CPU cores): all 60,000 Fashion-MNIST training images but
only 8 epochs, small MLP bottoms (no CNN), the full 10,000-image test set; attacks on
2,000 test images; 3 seeds, tables show mean±std.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from fedfleet.report.vertical import write_vertical_report
from fedfleet.vertical.config import load_vertical_config
from fedfleet.vertical.study import StudyResult, run_study

ROBUSTNESS = {
    "noise": [0.0, 0.5, 1.0, 2.0, 4.0],
    "pgd": [0.0, 0.1, 0.25, 0.5, 1.0],
    "scales": [0.0, 2.0, 5.0, 10.0],
    "corruption_fractions": [0.1, 0.3],
    "eval_samples": 2000,
    "pgd_steps": 10,
}
SETTINGS: dict[str, dict[str, Any]] = {
    "fashion_mnist": {
        "data": {"dataset": "fashion_mnist", "num_parties": 2, "max_train": None},
        "model": {"embedding_dim": 16, "bottom_hidden": 64, "interaction_dim": 32, "top_hidden": 32},
        "train": {"epochs": 8, "batch_size": 64, "lr": 0.05, "momentum": 0.9},
    },
    "breast_cancer": {
        "data": {"dataset": "breast_cancer", "num_parties": 3},
        "model": {"embedding_dim": 4, "bottom_hidden": 16, "interaction_dim": 8, "top_hidden": 8},
        "train": {"epochs": 30, "batch_size": 32, "lr": 0.02, "momentum": 0.9},
    },
    "digits": {
        "data": {"dataset": "digits", "num_parties": 2},
        "model": {"embedding_dim": 8, "bottom_hidden": 32, "interaction_dim": 16, "top_hidden": 16},
        "train": {"epochs": 20, "batch_size": 32, "lr": 0.05, "momentum": 0.9},
    },
}


def _cell(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.3f}" if len(values) == 1 else f"{mean:.3f}±{statistics.stdev(values):.3f}"


def _table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    print(f"\n{title}")
    cells = [header, *[[_cell(v) if isinstance(v, list) else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def _grid(rows_per_seed: list[list[dict[str, Any]]], column: str, value: str) -> tuple[list[str], list[list[Any]]]:
    """Models x ``column`` values, each cell the list of ``value`` over seeds."""
    first = rows_per_seed[0]
    keys = list(dict.fromkeys(row[column] for row in first))
    models = list(dict.fromkeys(row["model"] for row in first))
    cells: dict[tuple[str, Any], list[float]] = {}
    for rows in rows_per_seed:
        for row in rows:
            cells.setdefault((row["model"], row[column]), []).append(row[value])
    return ["model", *[f"{k:g}" for k in keys]], [[m, *[cells[m, k] for k in keys]] for m in models]


def report(name: str, results: list[StudyResult]) -> None:
    """Print the tables of one data set's study; cells are mean±std over seeds."""
    summaries = [result.summary for result in results]
    first = summaries[0]
    models = list(first["accuracy"])
    _table(f"[{name}] clean test accuracy ({first['alignment']['train']['overlap']} aligned training "
           f"samples, {len(results)} seeds, wall {sum(s['wall_time_s'] for s in summaries):.0f}s)",
           ["model", "accuracy"], [[m, [s["accuracy"][m] for s in summaries]] for m in models])
    checked = list(first["lipschitz_check"])
    _table(f"[{name}] Lipschitz constant passive embedding -> logits, and median clean embedding norm",
           ["model", "certified", "max random", "max adversarial", "holds (all seeds)", "embedding norm"],
           [[m, *[[s["lipschitz_check"][m][k] for s in summaries]
                  for k in ("certified_bound", "max_ratio_random", "max_ratio_adversarial")],
             all(s["lipschitz_check"][m]["bound_holds"] == 1.0 for s in summaries),
             [s["passive_embedding_norm"][m] for s in summaries]] for m in checked])
    for attack, label in (("noise", "Gaussian noise, norm / median embedding norm"),
                          ("pgd", f"PGD ({ROBUSTNESS['pgd_steps']} steps), radius / median embedding norm"),
                          ("scale", "embedding x factor (0 = zeros)")):
        header, rows = _grid([[r for r in res.attacks if r["attack"] == attack] for res in results],
                             "size", "accuracy")
        _table(f"[{name}] test accuracy under attack: {label}", header, rows)
    header, rows = _grid([res.certified for res in results], "size", "certified_accuracy")
    _table(f"[{name}] certified accuracy at radius / median embedding norm", header, rows)
    header, rows = _grid([res.corruption for res in results], "fraction", "accuracy")
    _table(f"[{name}] test accuracy after training with a share of corrupted batches "
           "(noise of 10x the embedding norm)", header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/vertical-bench"), help="reports go here")
    parser.add_argument("--datasets", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--lipschitz", type=float, default=4.0, help="the top model's bound L")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    start = time.perf_counter()
    results: dict[str, list[StudyResult]] = {}
    for name in args.datasets:
        for seed in args.seeds:
            raw = {"name": f"bench-{name}", "seed": seed, **SETTINGS[name], "robustness": ROBUSTNESS}
            raw["model"] = {**raw["model"], "lipschitz": args.lipschitz}
            print(f"{name}, seed {seed}", flush=True)
            result = run_study(load_vertical_config(raw), progress=lambda message: print(f"  {message}", flush=True))
            out_dir = args.out / f"{name}-seed{seed}"
            write_vertical_report(out_dir, f"Vertical robustness: {name}, seed {seed}", result.summary,
                                  result.history, result.attacks, result.certified, result.corruption)
            (out_dir / "results.json").write_text(json.dumps(
                {"summary": result.summary, "attacks": result.attacks, "certified": result.certified,
                 "corruption": result.corruption}, indent=2))
            results.setdefault(name, []).append(result)
    for name, per_seed in results.items():
        report(name, per_seed)
    print(f"\ntotal wall time {time.perf_counter() - start:.0f}s; reports under {args.out}/")


if __name__ == "__main__":
    main()
