"""Progress of ``fedfleet run`` on stderr: a bar on a terminal, plain lines elsewhere, and what Ctrl-C leaves."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fedfleet.fl.callbacks import BaseCallback
from fedfleet.fl.run_dir import CHECKPOINT_DIR

LINE_INTERVAL_S = 2.0  # plain lines: at most one per this many wall seconds (first and last always)


def _status(record: dict[str, Any]) -> str:
    return f"acc {record['test_accuracy']:.3f}  virtual {record['virtual_time_s']:.0f}s"


class ProgressBar(BaseCallback):
    """A rich progress bar showing round, latest accuracy and virtual time (for a terminal)."""

    def __init__(self, console: Console, unit: str = "round") -> None:
        self.progress = Progress(
            TextColumn(unit + " {task.completed}/{task.total}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("training", total=None, status="")

    def on_start(self, total_steps: int, start_step: int) -> None:
        self.progress.start()  # only once data and model are built, so set-up errors print alone
        self.progress.update(self.task, total=total_steps, completed=start_step)

    def on_step_end(self, step: int, record: dict[str, Any] | None) -> None:
        self.progress.update(self.task, completed=step, status=_status(record) if record is not None else None)

    def stop(self) -> None:
        """Leave the terminal clean (also after an error or Ctrl-C)."""
        if self.progress.live.is_started:
            self.progress.stop()


class ProgressLines(BaseCallback):
    """One plain line per round, at most every ``interval_s`` seconds: for logs, CI and ``nohup``.

    Parameters
    ----------
    write : callable
        Receives each line (without a newline), e.g. a non-terminal console's ``print``.
    interval_s : float, optional
        Least wall time between two lines (default ``LINE_INTERVAL_S``); the first and the last
        round are always shown.
    clock : callable
        Wall-clock seconds (``time.monotonic``; replaceable in tests).
    unit : str
        What a step is: "round" (sync) or "version" (async: one aggregation).
    """

    def __init__(self, write: Callable[[str], None], interval_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic, unit: str = "round") -> None:
        self.write = write
        self.unit = unit
        self.interval_s = LINE_INTERVAL_S if interval_s is None else interval_s
        self.clock = clock
        self.total = 0
        self.last_line: float | None = None
        self.status = ""

    def on_start(self, total_steps: int, start_step: int) -> None:
        self.total = total_steps
        resumed = f", resuming after {self.unit} {start_step}" if start_step else ""
        self.write(f"training: {total_steps} {self.unit}s{resumed}")

    def on_step_end(self, step: int, record: dict[str, Any] | None) -> None:
        if record is not None:
            self.status = "  " + _status(record)
        now = self.clock()
        due = self.last_line is None or now - self.last_line >= self.interval_s or step >= self.total
        if due:
            self.write(f"{self.unit} {step}/{self.total}{self.status}")
            self.last_line = now


class DeadlineWarning(BaseCallback):
    """Warn once when no update has arrived in time: every one was dropped by the round deadline."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.warned = False

    def on_step_end(self, step: int, record: dict[str, Any] | None) -> None:
        if self.warned or record is None:
            return
        dropped, accepted = record.get("dropped", 0), record.get("updates_accepted", 0)
        if dropped and not accepted:
            self.write(f"warning: by round {step} every update ({dropped}) missed the round deadline, so the "
                       "global model has not changed; raise train.deadline_s (or train.task_timeout_s)")
            self.warned = True


def resume_hint(run_dir: Path, checkpoint_every: int) -> str:
    """The line Ctrl-C ends with: how to continue ``run_dir``, and what a resume redoes."""
    if not (run_dir / CHECKPOINT_DIR).is_dir():
        if checkpoint_every == 0:
            return (f"interrupted; no checkpoint was kept (checkpoint_every=0), so {run_dir} cannot be resumed: "
                    "rerun it with --overwrite")
        return (f"interrupted before the first checkpoint (kept every {checkpoint_every} rounds, "
                f"checkpoint_every): nothing to resume in {run_dir}; rerun it with --overwrite")
    every = "" if checkpoint_every == 0 else f", kept every {checkpoint_every} rounds (checkpoint_every)"
    return (f"interrupted; continue with `fedfleet run --resume {run_dir}`: it restarts from the last "
            f"checkpoint{every}, redoing the rounds after it")
