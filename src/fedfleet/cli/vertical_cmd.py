"""``fedfleet vertical``: train a two-or-more-party vertical model and study its robustness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fedfleet.api import default_out_dir
from fedfleet.cli.common import OutputFormat, console, output, print_json
from fedfleet.fl.run_dir import RunDirectory
from fedfleet.paths import writable_dir
from fedfleet.report.vertical import write_vertical_report
from fedfleet.vertical.config import VerticalConfig, load_vertical_config
from fedfleet.vertical.study import StudyResult, run_study


def open_run_dir(path: Path) -> RunDirectory:
    """Create (or reuse) the run directory; a path that cannot be a writable folder is a ConfigError."""
    return RunDirectory(writable_dir(path, "--out"))


def write_run_dir(run_dir: RunDirectory, config: VerticalConfig, result: StudyResult) -> Path:
    """config.yaml, summary.json, metrics.jsonl, model.safetensors and report.html."""
    run_dir.write_config(config)
    summary: dict[str, Any] = {**result.summary, "robustness": {
        "attacks": result.attacks, "certified": result.certified, "corruption": result.corruption}}
    run_dir.write_summary(summary)
    run_dir.write_metrics(result.history)
    if result.model is not None:
        run_dir.write_model(result.model)
    return write_vertical_report(run_dir.path, f"Vertical FL: {config.name}", result.summary, result.history,
                                 result.attacks, result.certified, result.corruption)


def vertical(
    config: Annotated[Path, typer.Argument(help="YAML config, e.g. configs/vertical/digits.yaml")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override KEY=VALUE")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="run directory")] = None,
    format_: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Align parties, train the split model with a Lipschitz top, attack the passive party."""
    resolved = load_vertical_config(config, set_ or [])
    out_dir = out or default_out_dir(resolved.name)
    run_dir = open_run_dir(out_dir)  # before training, so a bad --out fails at once
    quiet = format_ is OutputFormat.json
    result = run_study(resolved, progress=(lambda message: None) if quiet else console.print)
    report = write_run_dir(run_dir, resolved, result)
    summary = result.summary
    if quiet:
        print_json({"run_dir": str(out_dir), **summary})
        return
    accuracy = ", ".join(f"{name} {value:.4f}" for name, value in summary["accuracy"].items())
    output.print(f"test accuracy: {accuracy}")
    output.print(f"certified bound {summary['certified_bound']:.4g}; largest observed ratio "
                  f"{summary['lipschitz_check']['lipschitz']['max_ratio_adversarial']:.4g}")
    leak = summary["label_leakage"]
    output.print(f"label leakage: the passive party recovers {leak['recovery_rate']:.3f} of training labels "
                 f"from its gradients (chance {leak['chance_rate']:.3f}, majority class {leak['majority_rate']:.3f})")
    output.print(f"report: {report}")


def register(app: typer.Typer) -> None:
    app.command("vertical")(vertical)
