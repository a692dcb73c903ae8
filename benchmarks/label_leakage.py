"""Vertical FL label leakage: how many training labels a passive party recovers from its gradients.

The split model of configs/vertical/{breast_cancer,digits}.yaml (Lipschitz top) is trained
with and without label protection (Gaussian noise on the gradients sent to passive parties,
``protection.gradient_noise`` times the batch's RMS gradient norm), with and without clipping
the passive embeddings at the active party (``protection.embedding_clip``). A run whose
training diverges (a NaN gradient, rejected by the channel) is counted, not averaged. Passive party 1 then runs
the direction-clustering attack of Li et al. (2022) on the gradients it received (KMeans on
the normalised gradients, k = classes, on each epoch and on the mean over epochs; the best
attempt counts). Recovery is cluster purity; chance is the purity of the same clusters with
shuffled labels; majority is the most common class's share. Test accuracy shows the cost.

Run:  .venv/bin/python benchmarks/label_leakage.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from fedfleet.errors import UpdateRejected
from fedfleet.threads import torch_threads
from fedfleet.vertical.config import load_vertical_config
from fedfleet.vertical.data import load_vertical
from fedfleet.vertical.leakage import label_leakage
from fedfleet.vertical.study import make_estimator

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "vertical"


def _cell(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f}±{statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


SETTINGS: list[tuple[float, float | None]] = [(0.0, None), (0.0, 1.0), (3.0, 1.0), (10.0, 1.0), (10.0, None)]


def _run(name: str, noise: float, clip: float | None, seed: int) -> dict[str, float] | None:
    overrides = [f"seed={seed}", f"protection.gradient_noise={noise}", f"protection.embedding_clip={clip}"]
    config = load_vertical_config(CONFIGS / f"{name}.yaml", [o.replace("None", "null") for o in overrides])
    data = load_vertical(config.data.dataset, config.data.num_parties, config.data.columns_per_party,
                         config.data.overlap, seed=seed)
    xs, y, _ = data.train.align(config.alignment.salt, "psi")
    xt, yt, _ = data.test.align(config.alignment.salt, "psi")
    try:
        estimator = make_estimator(config, config.model.lipschitz).fit(xs, y, len(data.classes))
    except UpdateRejected:
        return None
    leakage = label_leakage(estimator.received_gradients_[0].numpy(), y.numpy(), len(data.classes), seed)
    return {**leakage, "accuracy": estimator.score(xt, yt)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["breast_cancer", "digits"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    start = time.perf_counter()
    print("| data set | gradient noise | embedding clip | label recovery | chance | majority class | test accuracy "
          "| diverged |")
    print("|---|---|---|---|---|---|---|---|")
    with torch_threads(1):
        for name in args.datasets:
            for noise, clip in SETTINGS:
                results = [_run(name, noise, clip, seed) for seed in args.seeds]
                runs = [run for run in results if run is not None]
                cells = [_cell([run[key] for run in runs]) if runs else "-"
                         for key in ("recovery_rate", "chance_rate", "majority_rate", "accuracy")]
                print(f"| {name} | {noise:g} | {clip if clip else 'none'} | {' | '.join(cells)} | "
                      f"{len(results) - len(runs)}/{len(results)} |", flush=True)
    print(f"\n{len(args.seeds)} seeds, mean±std; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
