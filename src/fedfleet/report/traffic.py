"""Plots for traffic classification: the confusion matrix of an evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fedfleet.report.figures import new_figure, save_figure


def plot_confusion(
    labels: Sequence[str], matrix: Sequence[Sequence[int]], path: str | Path, title: str = ""
) -> Path:
    """Save a row-normalised confusion matrix (rows: true class) as PNG at ``path``.

    Cells show the share of each true class predicted as each class; the counts' row sums
    are in the tick labels.
    """
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = max(4.0, 0.45 * len(labels) + 2.0)
    figure, axes = new_figure(size + 1.0, size)
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = np.arange(len(labels))
    axes.set_xticks(ticks, labels, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(ticks, [f"{label} ({int(n)})" for label, n in zip(labels, totals[:, 0], strict=True)],
                    fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true (flows)")
    if title:
        axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of true class")
    return save_figure(figure, path)
