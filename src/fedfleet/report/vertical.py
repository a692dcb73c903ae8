"""Plots and the HTML page of a ``fedfleet vertical`` run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fedfleet.report.figures import new_figure, save_figure
from fedfleet.report.html import HtmlReport

Rows = Sequence[Mapping[str, Any]]

ATTACK_LABELS = {
    "noise": "Gaussian noise norm / median embedding norm",
    "pgd": "PGD radius / median embedding norm",
    "scale": "factor the embedding is multiplied by (0 = zeros)",
}


def _lines(rows: Rows, x: str, y: str, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    figure, axes = new_figure()
    for model in dict.fromkeys(row["model"] for row in rows):
        points = sorted((row[x], row[y]) for row in rows if row["model"] == model)
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=model)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, path)


def plot_attack(rows: Rows, attack: str, path: Path, absolute: bool = False) -> Path:
    """Accuracy against perturbation size for one test-time attack, one line per model.

    ``absolute`` puts the L2 radius itself on the x axis instead of the size relative to
    each model's median clean embedding norm.
    """
    chosen = [row for row in rows if row["attack"] == attack]
    x, label = ("radius", f"{attack} radius (absolute L2 norm)") if absolute else ("size", ATTACK_LABELS[attack])
    return _lines(chosen, x, "accuracy", path, label, "test accuracy",
                  f"passive party attacked at test time: {attack}")


def plot_corruption(rows: Rows, clean: Mapping[str, float], path: Path) -> Path:
    """Clean test accuracy against the share of corrupted training batches (0 = honest)."""
    honest = [{"model": model, "fraction": 0.0, "accuracy": clean[model]}
              for model in dict.fromkeys(row["model"] for row in rows) if model in clean]
    return _lines([*honest, *rows], "fraction", "accuracy", path, "share of corrupted training batches",
                  "test accuracy", "passive party corrupts embeddings during training")


def plot_certified(rows: Rows, path: Path) -> Path:
    """Certified accuracy against relative radius, one line per model."""
    return _lines(rows, "size", "certified_accuracy", path, "radius / median embedding norm",
                  "certified accuracy", "accuracy provably unchanged by any perturbation")


def plot_training(history: Rows, path: Path) -> Path:
    """Test accuracy against epoch for each split model."""
    return _lines(history, "epoch", "test_accuracy", path, "epoch", "test accuracy", "training")


def write_vertical_report(
    out_dir: Path, title: str, summary: Mapping[str, Any], history: Rows,
    attacks: Rows, certified: Rows, corruption: Rows,
) -> Path:
    """Write report.html and its PNG plots into ``out_dir``; return the page's path."""
    page = HtmlReport(title)
    page.heading("Clean accuracy")
    page.table([{"model": name, "test accuracy": value} for name, value in summary["accuracy"].items()])
    page.paragraph(f"Certified Lipschitz bound of passive embedding -> logits: "
                   f"{summary['certified_bound']:.4g}. Channel bytes up {summary['bytes_up']:,}, "
                   f"down {summary['bytes_down']:,}.")
    page.image(plot_training(history, out_dir / "training.png").name, "test accuracy per epoch")
    page.heading("Empirical check of the bound")
    page.table([{"model": name, **check} for name, check in summary["lipschitz_check"].items()])
    page.heading("Test-time attacks on the passive embedding")
    norms = ", ".join(f"{model} {norm:.3g}" for model, norm in summary["passive_embedding_norm"].items())
    page.paragraph("Sizes are relative to each model's median clean embedding norm of the attacked party "
                   f"({norms}); the absolute-radius plots compare equal norms.")
    for attack in dict.fromkeys(row["attack"] for row in attacks):
        page.image(plot_attack(attacks, attack, out_dir / f"attack_{attack}.png").name, f"attack: {attack}")
        if attack in ("noise", "pgd"):
            page.image(plot_attack(attacks, attack, out_dir / f"attack_{attack}_absolute.png", absolute=True).name,
                       f"attack: {attack}, absolute radius")
    page.table(attacks, ["model", "attack", "size", "radius", "accuracy"])
    if certified:
        page.image(plot_certified(certified, out_dir / "certified.png").name, "certified accuracy")
    if corruption:
        page.heading("Training-time corruption")
        page.image(plot_corruption(corruption, summary["accuracy"], out_dir / "corruption.png").name,
                   "accuracy after training with a corrupting passive party")
        page.table(corruption)
    page.heading("Alignment")
    page.table([{"split": split, **counts} for split, counts in summary["alignment"].items()])
    return page.write(out_dir / "report.html")
