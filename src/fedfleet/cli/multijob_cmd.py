"""``fedfleet multijob``: several FL jobs sharing one fleet, devices scheduled by a policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fedfleet.api import default_out_dir
from fedfleet.cli.common import OutputFormat, RunInterrupted, console, output, print_json
from fedfleet.cli.progress import ProgressBar, ProgressLines
from fedfleet.errors import ConfigError
from fedfleet.fl.callbacks import BaseCallback
from fedfleet.fl.multijob import MultiJobResult, load_multijob_config, resume_multijob, run_multijob
from fedfleet.fl.run_dir import CHECKPOINT_DIR, REPORT_FILE
from fedfleet.report.runs import write_runs_report


def multijob(
    config: Annotated[Path | None, typer.Argument(help="YAML config, e.g. configs/multijob/tiny.yaml")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override KEY=VALUE (jobs.0.train.rounds=3)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="run directory (new or empty)")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="continue this multi-job run directory")] = None,
    format_: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Train several jobs at once over one fleet; a scheduling policy picks each round's devices."""
    if resume is not None and (config is not None or set_ or out is not None):
        raise ConfigError("--resume continues a run with its own config and directory; drop CONFIG, --set and --out")
    if resume is None and config is None:
        raise ConfigError("give a multi-job config (e.g. configs/multijob/tiny.yaml) or --resume RUN_DIR")
    resolved = None if config is None else load_multijob_config(config, set_ or [])
    run_dir = resume if resume is not None else (out or default_out_dir(resolved.name if resolved else "multijob"))
    bar = ProgressBar(console, "round") if format_ is OutputFormat.text and console.is_terminal else None
    callbacks: list[BaseCallback] = []
    if format_ is OutputFormat.text:
        callbacks.append(bar if bar is not None else ProgressLines(
            lambda line: console.print(line, highlight=False, soft_wrap=True), unit="round"))
    try:
        result = resume_multijob(run_dir, callbacks=callbacks) if resolved is None else \
            run_multijob(resolved, run_dir, callbacks=callbacks)
    except KeyboardInterrupt:
        kept = (run_dir / CHECKPOINT_DIR).is_dir()
        raise RunInterrupted(f"interrupted; continue with `fedfleet multijob --resume {run_dir}`" if kept else
                             f"interrupted before the first checkpoint: nothing to resume in {run_dir}") from None
    finally:
        if bar is not None:
            bar.stop()
    report = write_runs_report([run_dir], run_dir / REPORT_FILE)
    if format_ is OutputFormat.json:
        print_json({"run_dir": str(run_dir), **result.summary})
        return
    _print_summary(result)
    output.print(f"report: {report}")


def _print_summary(result: MultiJobResult) -> None:
    summary: dict[str, Any] = result.summary
    for name, job in summary["jobs"].items():
        reached = job["time_to_target_s"]
        target = f"target at {reached:.0f}s" if reached is not None else "target not reached"
        accuracy = job["final_accuracy"]
        shown = f"{accuracy:.4f}" if accuracy is not None else "n/a"
        output.print(f"{name}: final accuracy {shown}, {target}, {job['rounds']} rounds, "
                     f"Jain {job['jain_index']:.3f}")
    everything = summary["time_to_all_targets_s"]
    targets = f"all targets at {everything:.0f}s" if everything is not None else "not every target reached"
    output.print(f"{summary['scheduler']}: {targets}, "
                 f"virtual time {summary['virtual_time_s']:.0f}s, devices busy {summary['device_busy_share']:.0%}, "
                 f"Jain {summary['jain_index']:.3f}, planning {summary['planning_s_per_round'] * 1000:.1f} ms/round")


def register(app: typer.Typer) -> None:
    app.command("multijob")(multijob)
