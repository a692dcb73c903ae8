"""Matplotlib set-up shared by every plot: a headless backend and a save helper."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from fedfleet.paths import write_output


def new_figure(width: float = 6.0, height: float = 4.0) -> tuple[Figure, plt.Axes]:
    """A figure with one axes, sized in inches."""
    figure, axes = plt.subplots(figsize=(width, height))
    return figure, axes


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Save ``figure`` as PNG at ``path`` and release its memory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    image = io.BytesIO()  # rendered first: matplotlib ignores a failed write (a full disk, /dev/full)
    figure.savefig(image, format=path.suffix[1:].lower() or "png", dpi=110)
    plt.close(figure)
    return write_output(path, image.getvalue())
