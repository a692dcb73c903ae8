"""Vertical FL on configs/vertical/digits.yaml: one process against one process per party.

In-process: the parties' alignment (PSI over a counting channel) and the split model's
training (``VerticalClassifier``) in this process. Two processes: ``federation.launch``
writes each party's own data file, starts a passive and an active party process, which align
by PSI over HTTP on localhost and train the same model. Alignment and training times are
wall-clock; for two processes ``launch`` also counts writing the files and starting the
processes. Bytes are payloads as counted by the channels (equal on both paths); ``wire`` is
the HTTP bodies, framing and alignment included. Medians of the repeats; accuracy must match.

Run:  nice -n 10 .venv/bin/python benchmarks/vertical_processes.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fedfleet.threads import torch_threads
from fedfleet.vertical.config import VerticalConfig, load_vertical_config
from fedfleet.vertical.data import load_vertical
from fedfleet.vertical.federation import launch
from fedfleet.vertical.study import align_splits, make_estimator

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "vertical" / "digits.yaml"


def in_process(config: VerticalConfig) -> dict[str, Any]:
    """Align and train in this process."""
    d = config.data
    data = load_vertical(d.dataset, d.num_parties, d.columns_per_party, d.overlap, d.max_train, d.max_test,
                         config.seed, d.root)
    start = time.perf_counter()
    xs, y, xt, yt, alignments = align_splits(config, data)
    aligned = time.perf_counter()
    with torch_threads(config.train.threads):
        estimator = make_estimator(config, config.model.lipschitz).fit(xs, y, len(data.classes), (xt, yt))
    done = time.perf_counter()
    return {"alignment_s": aligned - start, "train_s": done - aligned, "launch_s": None,
            "alignment_up": sum(c.bytes_up for _, c in alignments.values()),
            "alignment_down": sum(c.bytes_down for _, c in alignments.values()),
            "train_up": estimator.channel_.bytes_up, "train_down": estimator.channel_.bytes_down,
            "eval_up": estimator.channel_eval_.bytes_up, "eval_down": estimator.channel_eval_.bytes_down,
            "wire": None, "accuracy": estimator.history_[-1]["test_accuracy"]}


def two_processes(config: VerticalConfig) -> dict[str, Any]:
    """Align and train with a passive and an active party process over HTTP."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        (out / "config.yaml").write_text(json.dumps(config.model_dump()))
        s = launch(config, out / "config.yaml", out)
    return {"alignment_s": s["alignment_wall_time_s"], "train_s": s["wall_time_s"],
            "launch_s": s["launch_wall_time_s"], "alignment_up": s["alignment_bytes_up"],
            "alignment_down": s["alignment_bytes_down"], "train_up": s["bytes_up"], "train_down": s["bytes_down"],
            "eval_up": s["bytes_eval_up"], "eval_down": s["bytes_eval_down"],
            "wire": s["wire_bytes_sent"] + s["wire_bytes_received"], "accuracy": s["final_accuracy"]}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: None if runs[0][key] is None else statistics.median(run[key] for run in runs) for key in runs[0]}


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if isinstance(value, float) and value < 100 else f"{value:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    args = parser.parse_args()
    config = load_vertical_config(CONFIG, args.set)
    rows = {"in-process": [], "2 processes, HTTP": []}  # type: dict[str, list[dict[str, Any]]]
    for _ in range(args.repeats):  # interleaved, so load on a shared machine hits both alike
        rows["in-process"].append(in_process(config))
        rows["2 processes, HTTP"].append(two_processes(config))
    accuracies = {name: {run["accuracy"] for run in runs} for name, runs in rows.items()}
    if len(set.union(*accuracies.values())) != 1:
        raise SystemExit(f"the two paths disagree on accuracy: {accuracies}")
    print("| path | alignment s | training s | launch s | alignment bytes up / down | training bytes up / down "
          "| eval bytes up / down | HTTP bodies | test accuracy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, runs in rows.items():
        m = _median(runs)
        print(f"| {name} | {_cell(m['alignment_s'])} | {_cell(m['train_s'])} | {_cell(m['launch_s'])} | "
              f"{_cell(m['alignment_up'])} / {_cell(m['alignment_down'])} | {_cell(m['train_up'])} / "
              f"{_cell(m['train_down'])} | {_cell(m['eval_up'])} / {_cell(m['eval_down'])} | {_cell(m['wire'])} | "
              f"{m['accuracy']:.4f} |")


if __name__ == "__main__":
    main()
