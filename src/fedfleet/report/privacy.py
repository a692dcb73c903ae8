"""Outputs of ``fedfleet privacy``: image grids, candidate scatters, tables, JSON and CSV."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from fedfleet.config import dump_config
from fedfleet.privacy.jobs import MaskJobResult, OcclusionJobResult
from fedfleet.privacy.keys import key_file_content
from fedfleet.privacy.predict import REGION_FILE, save_model
from fedfleet.report.figures import new_figure, save_figure
from fedfleet.report.html import HtmlReport

REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"
CANDIDATES_FILE = "candidates.csv"
KEY_FILE = "key.json"


def _displayable(images: torch.Tensor) -> torch.Tensor:
    """Rescale a row to [0, 1] when its values leave that range (e.g. multiply-mode ciphertexts)."""
    low, high = float(images.min()), float(images.max())
    if low >= 0.0 and high <= 1.0:
        return images
    return (images - low) / max(high - low, 1e-12)


def image_grid(rows: Mapping[str, torch.Tensor], path: Path, cell: float = 1.1) -> Path:
    """One labelled row per batch (N, C, H, W); grey for one channel, RGB for three."""
    import matplotlib.pyplot as plt

    columns = max(len(images) for images in rows.values())
    figure, axes = plt.subplots(len(rows), columns, figsize=(cell * columns + 1.2, cell * len(rows)),
                                squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        shown = _displayable(images.detach().float())
        for c in range(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c < len(shown):
                picture = shown[c].permute(1, 2, 0).squeeze(-1).numpy()
                axis.imshow(picture, cmap="gray", vmin=0.0, vmax=1.0)
            if c == 0:
                axis.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    return save_figure(figure, path)


def scatter_candidates(
    x: Sequence[float], y: Sequence[float], chosen: int, path: Path, *, xlabel: str, ylabel: str,
    title: str, references: Mapping[str, tuple[float, float]] | None = None,
) -> Path:
    """Candidates as points, the chosen one ringed in red, reference points as labelled crosses."""
    figure, axes = new_figure(6.0, 4.5)
    axes.scatter(x, y, s=18, alpha=0.6, label="candidates")
    axes.scatter([x[chosen]], [y[chosen]], s=140, facecolors="none", edgecolors="red", linewidths=2,
                 label="chosen")
    for name, (rx, ry) in (references or {}).items():
        axes.scatter([rx], [ry], marker="x", s=60, label=name)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def _write_rows(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_key(key: Mapping[str, Any], path: Path) -> Path:
    """Write the secret key to ``path``, created with mode 0600 (owner read/write only)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(dict(key), indent=2) + "\n")
    return path


def _write_common(out_dir: Path, config_text: str, summary: dict[str, Any], rows: Sequence[Mapping[str, Any]]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(config_text)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    _write_rows(rows, out_dir / CANDIDATES_FILE)


def write_mask_report(result: MaskJobResult, out_dir: str | Path) -> Path:
    """Write config, summary, candidates, the target key and an HTML report; return the page."""
    out_dir = Path(out_dir)
    selector = result.selector
    rows = [score.as_row() for score in result.scores]
    _write_common(out_dir, dump_config(result.config), result.summary(), rows)
    write_key(key_file_content(selector.target_), out_dir / KEY_FILE)
    save_model(selector.model_, out_dir, architecture=result.config.model.name, input_shape=selector.target_.shape,
               classes=result.classes, protection="mask")
    chosen = selector.target_index_
    scatter_candidates(
        [s.original_accuracy for s in result.scores], [s.encrypted_accuracy for s in result.scores], chosen,
        out_dir / "masks_accuracy.png", xlabel="original model accuracy on encrypted images",
        ylabel="encrypted model accuracy", title="candidate masks",
    )
    scatter_candidates(
        [s.worst_attack_ssim for s in result.scores], [s.encrypted_accuracy for s in result.scores], chosen,
        out_dir / "masks_attack.png", xlabel="best attack reconstruction SSIM (lower is safer)",
        ylabel="encrypted model accuracy", title="accuracy against recoverability",
    )
    image_grid(selector.examples_[chosen], out_dir / "chosen_grid.png")
    image_grid(selector.examples_[result.random_index], out_dir / "random_grid.png")
    report = HtmlReport(f"Encryption mask selection: {result.config.name}")
    report.paragraph(
        f"Chosen mask {result.chosen.key.name} by rule {result.config.rule.name}; its secret key is in "
        f"{KEY_FILE} (mode 0600). Attacks: average = mean of ciphertexts leaks the fixed mask; linear/network "
        "= inverse learned on public images under the attacker's own keys of the same family; known "
        "plaintext = the mask solved from known (image, ciphertext) pairs; invariant = a classifier trained on "
        "key-free transforms (|y - 0.5|, |y|) of public images."
    )
    report.paragraph(
        "Keys: " + ("per image (every image encrypted with its own mask of the candidate's family, derived from "
                    "a master secret)" if result.config.keys == "per_image" else "shared (one mask for every image)")
        + f". The saved model (model.safetensors) scores {result.deployed['accuracy']:.3f} on "
        f"{result.deployed['images']}; rerun with keys={'shared' if result.config.keys == 'per_image' else 'per_image'}"
        " to compare accuracy and attack figures."
    )
    if not result.selector.qualified_:
        report.paragraph(f"Warning: {result.selector.warning_}")
    report.heading("Chosen, random choice and no mask")
    report.table([{"case": "chosen", **rows[chosen]}, {"case": "random choice", **rows[result.random_index]},
                  {"case": "no mask", **result.baseline}])
    if result.holdout:
        report.heading(f"Held-out check ({result.holdout_images} images not used for selection)")
        report.table([{"case": "chosen", **result.holdout[chosen]},
                      {"case": "random choice (mean of candidates)", **result.holdout_random_mean()},
                      {"case": "no mask", "encrypted_accuracy": result.holdout_clear_accuracy,
                       "original_accuracy": result.holdout_clear_accuracy}])
    report.heading("Candidates")
    report.table(rows)
    report.image("masks_accuracy.png", "encrypted vs original model accuracy, chosen ringed")
    report.image("masks_attack.png", "accuracy vs best attack SSIM, chosen ringed")
    report.image("chosen_grid.png", "chosen mask: clear, encrypted, reconstructed by each attack")
    report.image("random_grid.png", "random candidate: clear, encrypted, reconstructed by each attack")
    return report.write(out_dir / REPORT_FILE)


def write_occlusion_report(result: OcclusionJobResult, out_dir: str | Path) -> Path:
    """Write config, summary, candidates, the target region and an HTML report; return the page."""
    out_dir = Path(out_dir)
    rows = [score.as_row() for score in result.scores]
    _write_common(out_dir, dump_config(result.config), result.summary(), rows)
    (out_dir / REGION_FILE).write_text(json.dumps(result.chosen.region.to_dict(), indent=2) + "\n")
    if result.model is not None:
        save_model(result.model, out_dir, architecture=result.config.model.name, input_shape=result.input_shape,
                   classes=result.classes, protection="occlusion", fill=result.config.occlusion.fill)
    references = {name: (s.availability, s.security) for name, s in result.baselines.items()}
    scatter_candidates(
        [s.availability for s in result.scores], [s.security for s in result.scores],
        result.selector.target_index_, out_dir / "occlusion_scatter.png",
        xlabel=f"availability ({result.config.availability})", ylabel="visual security",
        title="occlusion candidates", references=references,
    )
    image_grid(result.examples, out_dir / "occlusion_grid.png")
    report = HtmlReport(f"Occlusion selection: {result.config.name}")
    accuracies = result.accuracies
    retrained = accuracies.get("retrained_occluded")
    report.paragraph(
        f"Chosen region {result.chosen.region.name} by rule {result.config.rule.name}. Target model "
        f"accuracy on {result.accuracy_images or 'validation images'}: clear {accuracies['clear']:.3f}, "
        f"occluded {accuracies['occluded']:.3f}"
        + ("" if retrained is None else f"; a model trained on occluded images: {retrained:.3f} on occluded images")
        + "."
    )
    report.heading("Chosen against baselines of the same shape and area")
    report.table([{"case": "chosen", **result.chosen.as_row()},
                  *({"case": name, **s.as_row(result.baseline_label(name))} for name, s in result.baselines.items())])
    if result.holdout:
        report.paragraph("Accuracy of the target model on held-out occluded images (not used for selection): "
                         + ", ".join(f"{name} {value:.3f}" for name, value in result.holdout.items()))
    report.image("occlusion_scatter.png", "security against availability, chosen ringed")
    report.image("occlusion_grid.png", "clear, occluded, inpainted")
    report.heading("Candidates")
    report.table(rows)
    return report.write(out_dir / REPORT_FILE)
