"""``fedfleet vertical``: train a two-or-more-party vertical model and study its robustness."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from safetensors.torch import save_file

from fedfleet.cli.common import OutputFormat, console, output, print_json
from fedfleet.config import dump_config
from fedfleet.report.vertical import write_vertical_report
from fedfleet.vertical.config import VerticalConfig, load_vertical_config
from fedfleet.vertical.study import StudyResult, run_study


def write_run_dir(out_dir: Path, config: VerticalConfig, result: StudyResult) -> Path:
    """config.yaml, summary.json, metrics.jsonl, model.safetensors and report.html."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(dump_config(config))
    summary: dict[str, Any] = {**result.summary, "robustness": {
        "attacks": result.attacks, "certified": result.certified, "corruption": result.corruption}}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with (out_dir / "metrics.jsonl").open("w") as metrics:
        metrics.writelines(json.dumps(entry) + "\n" for entry in result.history)
    if result.model is not None:
        save_file({k: v.contiguous() for k, v in result.model.state_dict().items()},
                  out_dir / "model.safetensors")
    return write_vertical_report(out_dir, f"Vertical FL: {config.name}", result.summary, result.history,
                                 result.attacks, result.certified, result.corruption)


def vertical(
    config: Annotated[Path, typer.Argument(help="YAML config, e.g. configs/vertical/digits.yaml")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override KEY=VALUE")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="run directory")] = None,
    format_: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Align parties, train the split model with a Lipschitz top, attack the passive party."""
    resolved = load_vertical_config(config, set_ or [])
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = out or Path("runs") / f"{resolved.name}-{stamp}"
    quiet = format_ is OutputFormat.json
    result = run_study(resolved, progress=(lambda message: None) if quiet else console.print)
    report = write_run_dir(out_dir, resolved, result)
    summary = result.summary
    if quiet:
        print_json({"run_dir": str(out_dir), **summary})
        return
    accuracy = ", ".join(f"{name} {value:.4f}" for name, value in summary["accuracy"].items())
    output.print(f"test accuracy: {accuracy}")
    output.print(f"certified bound {summary['certified_bound']:.4g}; largest observed ratio "
                  f"{summary['lipschitz_check']['lipschitz']['max_ratio_adversarial']:.4g}")
    output.print(f"report: {report}")


def register(app: typer.Typer) -> None:
    app.command("vertical")(vertical)
