"""Traffic classification on real captures: classifiers x splits x preprocessing ablation,
throughput of preprocess+classify, and extraction speed.

Flows come from the shared nDPI captures (``$FEDFLEET_SHARED/data/traffic/pcaps``) with
nDPI's application category as the label; nDPI's outputs, addresses and timestamps are
never features. Flows labelled ``Unspecified`` (nDPI could not tell) and classes with
fewer than ``--min-class-flows`` flows are left out. Extracted flows are cached under
``~/.cache/fedfleet/traffic`` so reruns skip nfstream; extraction speed is measured
uncached on the largest captures.

    python benchmarks/traffic.py [--seeds 2] [--json results.json]   # 4-10 min here
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from fedfleet.traffic import NFSTREAM_SPEC, classification_metrics, extract_flows, filter_labels, fit_model
from fedfleet.traffic.evaluate import capture_split, random_split
from fedfleet.traffic.extract import expand_captures

LABEL = NFSTREAM_SPEC.label or "application_category_name"
REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = Path.home() / ".cache" / "fedfleet" / "traffic"
NO_PREPROCESSING = {"null_invalid": False, "encode_categorical": False, "normalise": False}
VARIANTS: dict[str, dict[str, Any]] = {  # name -> TrafficPreprocessor parameters
    "defined preprocessing": {},
    "no preprocessing": NO_PREPROCESSING,
    "- invalid to null": {"null_invalid": False},
    "- nominal to integer": {"encode_categorical": False},
    "- normalise": {"normalise": False},
    "ports normalised too": {"port_mode": "normalise"},
    "ports bucketed": {"port_mode": "bucket"},
    "log-standard scaling": {"scaling": "log-standard"},
}
FAST_TREE = {"max_iter": 10, "learning_rate": 0.2, "early_stopping": False}


def shared_pcaps() -> Path:
    shared = Path(os.environ.get("FEDFLEET_SHARED", REPO_ROOT.parent / "shared"))
    return shared / "data" / "traffic" / "pcaps"


def load_flows(pcaps: Path, min_class_flows: int) -> tuple[pd.DataFrame, int]:
    extraction = extract_flows([pcaps], cache_dir=CACHE_DIR)
    for error in extraction.errors:
        print(f"  capture error: {error}")
    flows = filter_labels(extraction.flows, LABEL, ("Unspecified",), min_class_flows)
    return flows.reset_index(drop=True), len(extraction.flows)


def extraction_speed(pcaps: Path, count: int) -> dict[str, float]:
    """Uncached extraction of the ``count`` largest captures."""
    largest = sorted(expand_captures([pcaps]), key=lambda p: p.stat().st_size)[-count:]
    extraction = extract_flows(largest)
    return {"captures": len(largest), "packets": extraction.packets, "flows": len(extraction.flows),
            "seconds": extraction.seconds, "packets_per_second": extraction.packets_per_second}


def port_lookup_predict(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Baseline: the most common training label of the flow's server port, else the majority."""
    majority = train[LABEL].mode()[0]
    by_port = train.groupby("dst_port")[LABEL].agg(lambda labels: labels.mode()[0])
    return test["dst_port"].map(by_port).fillna(majority).to_numpy()


def splits(flows: pd.DataFrame, seed: int) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    return {"random flows": random_split(flows, LABEL, 0.25, seed),
            "by capture": capture_split(flows, 0.25, seed)}


def scores(test: pd.DataFrame, predicted: np.ndarray) -> tuple[float, float]:
    metrics = classification_metrics(test[LABEL], predicted)
    return metrics["accuracy"], metrics["macro_f1"]


def accuracy_table(flows: pd.DataFrame, seeds: int, mlp_epochs: int) -> list[dict[str, Any]]:
    results: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for seed in range(seeds):
        for split_name, (train, test) in splits(flows, seed).items():
            results.setdefault((split_name, "baseline", "majority class"), []).append(
                scores(test, np.full(len(test), train[LABEL].mode()[0])))
            results.setdefault((split_name, "baseline", "server-port lookup"), []).append(
                scores(test, port_lookup_predict(train, test)))
            for classifier in ("tree", "mlp"):
                params = {"epochs": mlp_epochs} if classifier == "mlp" else {}
                for variant, preprocessing in VARIANTS.items():
                    model = fit_model(train, NFSTREAM_SPEC, classifier, preprocessing, params, seed)
                    results.setdefault((split_name, classifier, variant), []).append(
                        scores(test, model.predict(test)))
            print(f"  seed {seed} done", flush=True)
    rows = []
    for (split_name, classifier, variant), values in results.items():
        accuracy, macro_f1 = np.asarray(values).T
        rows.append({"split": split_name, "classifier": classifier, "preprocessing": variant,
                     "accuracy": accuracy.mean(), "macro_f1": macro_f1.mean(),
                     "macro_f1_std": macro_f1.std()})
    return rows


def corrupt(flows: pd.DataFrame, rate: float, seed: int) -> pd.DataFrame:
    """CICFlowMeter-style faults: a share of duration/IAT cells become inf, -1 or text."""
    rng = np.random.default_rng(seed)
    damaged = flows.copy()
    columns = [c for c in flows.columns if c.endswith(("_duration_ms", "_piat_ms"))]
    for name in columns:
        values = damaged[name].astype(object)
        hit = rng.random(len(values)) < rate
        values[hit] = rng.choice(np.array([np.inf, -1.0, "Infinity"], dtype=object), hit.sum())
        damaged[name] = values
    return damaged


def corruption_table(flows: pd.DataFrame, rate: float, mlp_epochs: int) -> list[dict[str, Any]]:
    train, test = random_split(corrupt(flows, rate, 0), LABEL, 0.25, 0)
    rows = []
    for classifier in ("tree", "mlp"):
        params = {"epochs": mlp_epochs} if classifier == "mlp" else {}
        for variant in ("defined preprocessing", "- invalid to null"):
            model = fit_model(train, NFSTREAM_SPEC, classifier, VARIANTS[variant], params, 0)
            accuracy, macro_f1 = scores(test, model.predict(test))
            rows.append({"classifier": classifier, "preprocessing": variant,
                         "accuracy": accuracy, "macro_f1": macro_f1})
    return rows


def throughput(flows: pd.DataFrame, mlp_epochs: int) -> list[dict[str, Any]]:
    """Flows/s of preprocess+classify on batches, fastest of three passes over 100k flows."""
    train, test = random_split(flows, LABEL, 0.25, 0)
    pool = pd.concat([flows] * (100_000 // len(flows) + 1), ignore_index=True).iloc[:100_000]
    models = {
        "tree (default)": fit_model(train, NFSTREAM_SPEC, "tree"),
        "tree (10 rounds)": fit_model(train, NFSTREAM_SPEC, "tree", classifier_params=FAST_TREE),
        "mlp": fit_model(train, NFSTREAM_SPEC, "mlp", classifier_params={"epochs": mlp_epochs}),
    }
    rows = []
    for name, model in models.items():
        accuracy, macro_f1 = scores(test, model.predict(test))
        for threads in (1, 2):
            with threadpool_limits(threads):
                torch.set_num_threads(threads)
                for batch in (1_000, 10_000, 100_000):
                    rows.append({"model": name, "threads": threads, "batch": batch,
                                 "flows_per_s": _rate(model, pool, batch),
                                 "accuracy": accuracy, "macro_f1": macro_f1})
    torch.set_num_threads(1)
    return rows


def _rate(model: Any, pool: pd.DataFrame, batch: int) -> float:
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        for offset in range(0, len(pool), batch):
            model.predict(pool.iloc[offset:offset + batch])
        best = min(best, time.perf_counter() - start)
    return len(pool) / best


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n### {title}\n")
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(_format(row[c]) for c in columns) + " |")


def _format(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="splits (and model seeds) averaged")
    parser.add_argument("--min-class-flows", type=int, default=20)
    parser.add_argument("--mlp-epochs", type=int, default=30)
    parser.add_argument("--corruption", type=float, default=0.05, help="share of cells damaged")
    parser.add_argument("--extraction-captures", type=int, default=40)
    parser.add_argument("--json", type=Path, help="write all tables here as JSON")
    args = parser.parse_args()
    pcaps = shared_pcaps()
    if not pcaps.is_dir():
        raise SystemExit(f"captures not found at {pcaps}; set FEDFLEET_SHARED")
    torch.set_num_threads(1)
    started = time.perf_counter()
    with threadpool_limits(1):
        speed = extraction_speed(pcaps, args.extraction_captures)
        flows, all_flows = load_flows(pcaps, args.min_class_flows)
        print(f"{all_flows} flows extracted; {len(flows)} kept in {flows[LABEL].nunique()} classes "
              f"from {flows['capture'].nunique()} captures")
        tables = {"extraction": [speed],
                  "accuracy": accuracy_table(flows, args.seeds, args.mlp_epochs),
                  "corruption": corruption_table(flows, args.corruption, args.mlp_epochs)}
    tables["throughput"] = throughput(flows, args.mlp_epochs)
    print_table(f"Extraction, uncached, {args.extraction_captures} largest captures", tables["extraction"])
    print_table(f"Accuracy and macro-F1, mean of {args.seeds} seeds (test = 25%)", tables["accuracy"])
    print_table(f"{args.corruption:.0%} of duration/IAT cells damaged (inf, -1, 'Infinity'), "
                "random split", tables["corruption"])
    print_table("Preprocess+classify throughput (100k flows in batches)", tables["throughput"])
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(tables, indent=1, default=float))


if __name__ == "__main__":
    main()
