"""The traffic pipeline on public flow tables others wrote, against a plain
HistGradientBoostingClassifier on the same split and the same feature columns.

Samples (fetched outside the repo, see docs/traffic.md for each one's repository, commit
and path; a sample whose file is absent is skipped):

- IoT-23: Zeek conn.log fields of 9 captures (CSV), label ``label`` (Benign/Malicious,
  spelled ``benign`` in the honeypot captures: capitalised here); random and by-capture splits;
- UNSW-NB15: 7,000 flows of partition 1, label ``label`` (Benign/Malicious); random split;
- Zeek: a Trickbot infection's conn.log (TSV), label ``service`` (nDPI-style: the
  application protocol Zeek recognised; flows without one left out); random split;
- CIC-IDS2017 CICFlowMeter CSVs, only when given with ``--cic`` (the slices fetched here hold
  7 attacks in about 8,000 flows: too few).

The baseline is what a user would write first: label columns and the capture dropped,
text columns as ordinal codes (unseen values missing), numbers as they are (±inf
missing), all-null columns dropped (they crash HGB's binning: "window shape cannot be
larger than input array shape"), ``HistGradientBoostingClassifier(random_state=seed)`` with
its defaults. Its
features are fedfleet's feature columns, so the comparison is of preprocessing and
classifier settings; the "addresses as features" row shows what leaving addresses in does.

    python benchmarks/traffic_public.py [--samples DIR] [--seeds 3] [--cic CSV ...]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from fedfleet.traffic import classification_metrics, filter_labels, fit_model, read_flows
from fedfleet.traffic.evaluate import split_flows
from fedfleet.traffic.schema import CAPTURE_COLUMN, ColumnSpec, column_role

DEFAULT_SAMPLES = Path(os.environ.get("FEDFLEET_SAMPLES", Path.home() / ".cache" / "fedfleet" / "samples"))

MIN_CLASS_FLOWS = 10


@dataclass
class Sample:
    """One public table: its flows, column spec, label and the splits it supports."""

    name: str
    flows: pd.DataFrame
    spec: ColumnSpec
    splits: tuple[str, ...]


def iot23(root: Path) -> Sample | None:
    files = sorted((root / "iot23").glob("*-labeled.csv"))
    if not files:
        return None
    flows, spec, _ = read_flows(list(files))
    flows[CAPTURE_COLUMN] = np.repeat([f.name for f in files], [len(pd.read_csv(f, usecols=[0])) for f in files])
    flows["label"] = flows["label"].str.capitalize()
    return Sample("IoT-23 (Zeek CSV)", flows, spec.with_label("label"), ("random", "capture"))


def unsw(root: Path) -> Sample | None:
    path = root / "unsw-nb15" / "unsw-nb15_1_sampled.csv"
    if not path.exists():
        return None
    flows, spec, _ = read_flows([path])
    return Sample("UNSW-NB15 (partition 1)", flows, spec.with_label("label"), ("random",))


def zeek(root: Path) -> Sample | None:
    path = root / "zeek" / "trickbot-conn.log"
    if not path.exists():
        return None
    flows, spec, _ = read_flows([path])
    return Sample("Zeek conn.log (Trickbot)", flows.dropna(subset=["service"]), spec.with_label("service"),
                  ("random",))


def cic(paths: list[Path]) -> Sample | None:
    present = [path for path in paths if path.exists()]
    if not present:
        return None
    flows, spec, _ = read_flows(list(present), encoding="cp1252")
    return Sample("CIC-IDS2017 (CICFlowMeter)", flows, spec.with_label("Label"), ("random",))


def plain_frame(flows: pd.DataFrame, columns: list[str], categories: dict[str, list[str]]) -> pd.DataFrame:
    """The baseline's input: numbers as they are (±inf missing), text as ordinal codes of the
    training values (unseen and missing values missing)."""
    frame = pd.DataFrame(index=flows.index)
    for name in columns:
        if name in categories:
            codes = pd.Index(categories[name]).get_indexer(flows[name].astype(str))
            frame[name] = np.where((codes >= 0) & flows[name].notna().to_numpy(), codes, np.nan)
        else:
            frame[name] = pd.to_numeric(flows[name], errors="coerce").replace([np.inf, -np.inf], np.nan)
    return frame


def plain_baseline(train: pd.DataFrame, test: pd.DataFrame, columns: list[str], label: str, seed: int) -> np.ndarray:
    text = [name for name in columns if not pd.api.types.is_numeric_dtype(train[name])
            and pd.to_numeric(train[name], errors="coerce").notna().mean() < 0.9]
    categories = {name: sorted(set(train[name].dropna().astype(str))) for name in text}
    inputs = plain_frame(train, columns, categories)
    kept = [name for name in columns if inputs[name].notna().any()]  # an all-null column crashes HGB's binning
    model = HistGradientBoostingClassifier(random_state=seed)
    model.fit(inputs[kept], train[label].astype(str))
    return np.asarray(model.predict(plain_frame(test, columns, categories)[kept]))


def with_addresses(spec: ColumnSpec) -> ColumnSpec:
    return spec.model_copy(update={"exclude": [c for c in spec.exclude if column_role(c) != "address"]})


def run(sample: Sample, split: str, seed: int) -> list[dict[str, Any]]:
    label = sample.spec.label or ""
    flows = filter_labels(sample.flows, label, min_flows=MIN_CLASS_FLOWS).reset_index(drop=True)
    train, test = split_flows(flows, split, label, 0.25, seed)
    columns = sample.spec.feature_columns(list(flows.columns))
    candidates: dict[str, Callable[[], np.ndarray]] = {
        "fedfleet tree": lambda: fit_model(train, sample.spec, "tree", random_state=seed).predict(test),
        "plain HGB, same features": lambda: plain_baseline(train, test, columns, label, seed),
    }
    if split == "capture":
        spec = with_addresses(sample.spec)
        candidates["fedfleet tree, addresses as features"] = (
            lambda: fit_model(train, spec, "tree", random_state=seed).predict(test))
    rows = []
    for name, predict in candidates.items():
        start = time.perf_counter()
        predicted = predict()
        seconds = time.perf_counter() - start
        metrics = classification_metrics(test[label], predicted)
        rows.append({"sample": sample.name, "split": split, "model": name, "train": len(train), "test": len(test),
                     "classes": flows[label].nunique(), "seed": seed, "accuracy": metrics["accuracy"],
                     "macro_f1": metrics["macro_f1"], "seconds": seconds})
    return rows


def public_samples(root: Path, cic_paths: list[Path]) -> dict[str, Callable[[], Sample | None]]:
    """Loaders of the public samples by name; a loader returns None when its file is absent."""
    return {"IoT-23": lambda: iot23(root), "UNSW-NB15": lambda: unsw(root), "Zeek": lambda: zeek(root),
            "CIC-IDS2017": lambda: cic(cic_paths)}


def collect(loaders: dict[str, Callable[[], Sample | None]], seeds: int,
            run_one: Callable[[Sample, str, int], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows of ``run_one`` for every present sample, split and seed (one thread); absent
    samples are reported and skipped."""
    rows: list[dict[str, Any]] = []
    with threadpool_limits(1):
        for name, load in loaders.items():
            sample = load()
            if sample is None:
                print(f"skipped {name}: sample absent")
                continue
            for split in sample.splits:
                for seed in range(seeds):
                    rows.extend(run_one(sample, split, seed))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES,
                        help="folder of scripts/get-public-samples.sh (default $FEDFLEET_SAMPLES or %(default)s)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cic", type=Path, nargs="*", default=[], help="CIC-IDS2017 CICFlowMeter CSVs")
    args = parser.parse_args()
    rows = collect(public_samples(args.samples, args.cic), args.seeds, run)
    if not rows:
        return
    table = pd.DataFrame(rows)
    summary = (table.groupby(["sample", "split", "model"], sort=False)
               .agg(train=("train", "mean"), test=("test", "mean"), classes=("classes", "first"),
                    accuracy=("accuracy", "mean"), acc_sd=("accuracy", "std"), macro_f1=("macro_f1", "mean"),
                    f1_sd=("macro_f1", "std"), seconds=("seconds", "mean")))
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
