"""``fedfleet run`` and ``fedfleet report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedfleet import api
from fedfleet.cli.common import OutputFormat, RunInterrupted, console, output, print_json
from fedfleet.cli.progress import DeadlineWarning, ProgressBar, ProgressLines, resume_hint
from fedfleet.config import RunConfig, load_config
from fedfleet.errors import ConfigError
from fedfleet.fl.callbacks import BaseCallback
from fedfleet.fl.simulation import read_run_config
from fedfleet.paths import writable_file
from fedfleet.report.runs import write_runs_report


def run(
    config: Annotated[Path | None, typer.Argument(help="YAML config; default configs/default.yaml")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override KEY=VALUE")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="run directory (new or empty)")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace the earlier run in --out")] = False,
    resume: Annotated[Path | None, typer.Option("--resume", help="continue this run directory")] = None,
    format_: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Run a federated training job and write its run directory."""
    if resume is not None and (config is not None or set_ or out is not None or overwrite):
        raise ConfigError("--resume continues a run with its own config and directory; "
                          "drop CONFIG, --set, --out and --overwrite, or start a new run without --resume")
    resolved = None if resume is not None else load_config(config, set_ or [])
    run_dir, run_config = _run_dir_and_config(resolved, resume, out)
    unit = "version" if run_config.train.mode == "async" else "round"
    bar = ProgressBar(console, unit) if format_ is OutputFormat.text and console.is_terminal else None
    callbacks = _progress_callbacks(format_, bar, unit)
    try:
        if resolved is None:
            assert resume is not None
            result = api.resume(resume, callbacks=callbacks)
        else:
            result = api.run(resolved, out_dir=run_dir, overwrite=overwrite, callbacks=callbacks)
    except KeyboardInterrupt:
        raise RunInterrupted(resume_hint(run_dir, run_config.checkpoint_every)) from None
    finally:
        if bar is not None:
            bar.stop()
    assert result.out_dir is not None
    if format_ is OutputFormat.json:
        print_json({"run_dir": str(result.out_dir), **result.summary})
        return
    summary = result.summary
    output.print(f"final accuracy {summary['final_accuracy']:.4f} (best {summary['best_accuracy']:.4f}), "
                  f"virtual time {summary['virtual_time_s']:.0f}s, wall {summary['wall_time_s']:.1f}s")
    output.print(f"report: {result.out_dir / api.REPORT_FILE}")


def _progress_callbacks(format_: OutputFormat, bar: ProgressBar | None, unit: str) -> list[BaseCallback]:
    """Text mode: a bar on a terminal, else one plain line per round (logs, CI); JSON mode: silence."""
    if format_ is OutputFormat.json:
        return []
    def say(line: str) -> None:  # above the bar on a terminal, as it is (never wrapped) in a log
        console.print(line, highlight=False, soft_wrap=True)

    return [bar if bar is not None else ProgressLines(say, unit=unit), DeadlineWarning(say)]


def _run_dir_and_config(resolved: RunConfig | None, resume: Path | None, out: Path | None) -> tuple[Path, RunConfig]:
    """The run directory this command writes (runs/<name>-<time> by default) and the run's config."""
    if resolved is None:
        assert resume is not None
        return resume, read_run_config(resume)
    return (out if out is not None else api.default_out_dir(resolved.name)), resolved


def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="one or more run directories")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Path("report.html"),
) -> None:
    """Compare runs in one page (summary table, accuracy against round and virtual time)."""
    if out.suffix.lower() not in ("", ".html", ".htm"):
        raise ConfigError(f"--out {out}: the report is an HTML page; give a name ending in .html, not {out.suffix!r}")
    path = write_runs_report(run_dirs, writable_file(out, "--out"))
    output.print(f"report: {path}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("report")(report)
