"""Plots of a pruned run: each conv layer's rate, and the model's size and cost, over rounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.axes import Axes

from fedfleet.report.figures import new_figure, save_figure

RATE_PREFIX = "prune_rate_layer"


def is_pruned_run(records: list[dict[str, Any]]) -> bool:
    return bool(records) and "model_flops" in records[-1]


def plot_layer_rates(runs: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Share of each conv layer's filters removed, against round (one line per run and layer)."""
    figure, axes = new_figure()
    for label, records in runs.items():
        for key in sorted(k for k in records[-1] if k.startswith(RATE_PREFIX)):
            axes.step([r["round"] for r in records], [r.get(key, 0.0) for r in records], where="post",
                      label=f"{label}: layer {key.removeprefix(RATE_PREFIX)}")
    _label(axes, "pruning rate (share of filters removed)", 1.0)
    return save_figure(figure, path)


def plot_model_size(runs: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Non-zero parameters and forward FLOPs per sample, each relative to the first evaluated model, against round."""
    figure, axes = new_figure()
    for label, records in runs.items():
        rounds = [r["round"] for r in records]
        for key, name, style in (("model_nonzero_params", "parameters", "-"), ("model_flops", "FLOPs", "--")):
            first = records[0][key]
            axes.step(rounds, [r[key] / first for r in records], style, where="post", label=f"{label}: {name}")
    _label(axes, "share of the first evaluated model", 1.05)
    return save_figure(figure, path)


def _label(axes: Axes, ylabel: str, top: float) -> None:
    axes.set_xlabel("round")
    axes.set_ylabel(ylabel)
    axes.set_ylim(0, top)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
