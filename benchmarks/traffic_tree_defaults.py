"""Which tree settings hold across flow tables: fedfleet's tree defaults against early stopping
(the former default) and a few alternatives, on every public sample and on nDPI-labelled flows
of the shared captures.

Tables: those of ``benchmarks/traffic_public.py`` (IoT-23 Zeek CSVs, UNSW-NB15, a Zeek
conn.log; CIC-IDS2017 CSVs with ``--cic``) and the nfstream flows of the shared captures
labelled by nDPI's application category (``benchmarks/traffic.py``). Each row is the mean
over seeds of macro-F1 and accuracy on the held-out side of a random split (and a split by
capture where the table has captures), with the tree's iterations actually run.

    python benchmarks/traffic_tree_defaults.py [--seeds 2] [--samples DIR] [--cic CSV ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import traffic_public as public

import traffic as ndpi
from fedfleet.traffic import NFSTREAM_SPEC, classification_metrics, filter_labels, fit_model
from fedfleet.traffic.evaluate import split_flows

SETTINGS: dict[str, dict[str, Any]] = {  # name -> classifier parameters over fedfleet's defaults
    "fedfleet default (l2=1, 100 iterations)": {},
    "former default (early stopping, l2=0)": {"early_stopping": True, "l2_regularization": 0.0},
    "l2=1 + early stopping": {"early_stopping": True},
    "l2=0, 100 iterations": {"l2_regularization": 0.0},
    "l2=1, 300 iterations": {"max_iter": 300},
    "default + balanced class weight": {"class_weight": "balanced"},
}


def ndpi_sample(min_class_flows: int) -> public.Sample | None:
    try:
        flows, _ = ndpi.load_flows(ndpi.shared_pcaps(), min_class_flows)
    except (OSError, SystemExit):
        return None
    return public.Sample("nDPI categories (nfstream)", flows, NFSTREAM_SPEC, ("random", "capture"))


def rows_for(sample: public.Sample, split: str, seed: int) -> list[dict[str, Any]]:
    label = sample.spec.label or ""
    flows = filter_labels(sample.flows, label, min_flows=public.MIN_CLASS_FLOWS).reset_index(drop=True)
    train, test = split_flows(flows, split, label, 0.25, seed)
    rows = []
    for name, params in SETTINGS.items():
        start = time.perf_counter()
        model = fit_model(train, sample.spec, "tree", classifier_params=params, random_state=seed)
        metrics = classification_metrics(test[label], model.predict(test))
        rows.append({"sample": sample.name, "split": split, "setting": name, "seed": seed,
                     "macro_f1": metrics["macro_f1"], "accuracy": metrics["accuracy"],
                     "iterations": model.training["iterations"], "seconds": time.perf_counter() - start})
        print(" ".join(f"{value:.3f}" if isinstance(value, float) else str(value) for value in rows[-1].values()),
              flush=True)  # progress, one line per fit
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=public.DEFAULT_SAMPLES)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--cic", type=Path, nargs="*", default=[], help="CIC-IDS2017 CICFlowMeter CSVs")
    args = parser.parse_args()
    loaders = public.public_samples(args.samples, args.cic) | {"nDPI": lambda: ndpi_sample(public.MIN_CLASS_FLOWS)}
    rows = public.collect(loaders, args.seeds, rows_for)
    table = pd.DataFrame(rows)
    summary = (table.groupby(["sample", "split", "setting"], sort=False)
               .agg(macro_f1=("macro_f1", "mean"), f1_min=("macro_f1", "min"), accuracy=("accuracy", "mean"),
                    iterations=("iterations", "mean"), seconds=("seconds", "mean")))
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
