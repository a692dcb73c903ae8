"""``fedfleet run`` and ``fedfleet report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fedfleet import api
from fedfleet.cli.common import OutputFormat, console, output, print_json
from fedfleet.config import load_config
from fedfleet.errors import ConfigError
from fedfleet.fl.callbacks import BaseCallback
from fedfleet.fl.simulation import read_run_config
from fedfleet.report.runs import write_runs_report


class ProgressBar(BaseCallback):
    """A rich progress bar showing round, latest accuracy and virtual time."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("training", total=None, status="")

    def on_start(self, total_steps: int, start_step: int) -> None:
        self.progress.start()  # only once data and model are built, so set-up errors print alone
        self.progress.update(self.task, total=total_steps, completed=start_step)

    def on_step_end(self, step: int, record: dict[str, Any] | None) -> None:
        status = ""
        if record is not None:
            status = f"acc {record['test_accuracy']:.3f}  virtual {record['virtual_time_s']:.0f}s"
        self.progress.update(self.task, completed=step, status=status or None)


def _progress() -> Progress:
    return Progress(
        TextColumn("round {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def run(
    config: Annotated[Path | None, typer.Argument(help="YAML config; default configs/default.yaml")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override KEY=VALUE")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="run directory (new or empty)")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace the earlier run in --out")] = False,
    resume: Annotated[Path | None, typer.Option("--resume", help="continue this run directory")] = None,
    format_: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Run a federated training job and write its run directory."""
    if resume is not None:
        if config is not None or set_ or out is not None or overwrite:
            raise ConfigError("--resume continues a run with its own config and directory; "
                              "drop CONFIG, --set, --out and --overwrite, or start a new run without --resume")
        read_run_config(resume)  # fail fast, before the progress bar
    resolved = None if resume is not None else load_config(config, set_ or [])
    progress = _progress()
    callbacks = [ProgressBar(progress)] if format_ is OutputFormat.text else []
    try:
        if resolved is None:
            assert resume is not None
            result = api.resume(resume, callbacks=callbacks)
        else:
            result = api.run(resolved, out_dir=out, overwrite=overwrite, callbacks=callbacks)
    finally:
        if progress.live.is_started:
            progress.stop()
    assert result.out_dir is not None
    if format_ is OutputFormat.json:
        print_json({"run_dir": str(result.out_dir), **result.summary})
        return
    summary = result.summary
    output.print(f"final accuracy {summary['final_accuracy']:.4f} (best {summary['best_accuracy']:.4f}), "
                  f"virtual time {summary['virtual_time_s']:.0f}s, wall {summary['wall_time_s']:.1f}s")
    output.print(f"report: {result.out_dir / api.REPORT_FILE}")


def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="one or more run directories")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Path("report.html"),
) -> None:
    """Compare runs in one page (summary table, accuracy against round and virtual time)."""
    path = write_runs_report(run_dirs, out)
    output.print(f"report: {path}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("report")(report)
