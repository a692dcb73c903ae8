"""The files of a multi-job run directory.

```
RUN/config.yaml            the resolved multi-job config
RUN/summary.json           combined: time until all targets, per-job accuracy, fairness, occupancy
RUN/schedule.jsonl         one line per dispatched round: job, devices, times, cost terms, planning time
RUN/jobs/<name>/           the job as a run: config.yaml, metrics.jsonl, summary.json, model.safetensors
RUN/scheduler/rlds.safetensors   the RLDS policy's weights (rlds only; scheduler.rlds.weights loads them)
RUN/checkpoint/            resume state of the whole run
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedfleet.config import dump_config
from fedfleet.fl.history import read_jsonl, write_jsonl
from fedfleet.fl.multijob.config import MultiJobConfig
from fedfleet.fl.run_dir import CHECKPOINT_DIR, CONFIG_FILE, SUMMARY_FILE, RunDirectory
from fedfleet.fl.scheduling import SchedulingPolicy
from fedfleet.fl.scheduling.rlds import WEIGHTS_FILE, RldsPolicy

JOBS_DIR = "jobs"
SCHEDULE_FILE = "schedule.jsonl"
SCHEDULER_DIR = "scheduler"


class MultiJobDirectory:
    """Writes a multi-job run directory (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def job_dir(self, name: str) -> RunDirectory:
        return RunDirectory(self.path / JOBS_DIR / name)

    def write_config(self, config: MultiJobConfig) -> None:
        (self.path / CONFIG_FILE).write_text(dump_config(config))

    def write_schedule(self, schedule: list[dict[str, Any]]) -> None:
        write_jsonl(self.path / SCHEDULE_FILE, schedule)

    def write_summary(self, summary: dict[str, Any]) -> None:
        (self.path / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")

    def save_policy(self, policy: SchedulingPolicy) -> Path | None:
        """The RLDS policy's weights (other policies learn nothing to keep)."""
        if not isinstance(policy, RldsPolicy):
            return None
        (self.path / SCHEDULER_DIR).mkdir(exist_ok=True)
        return policy.save(self.path / SCHEDULER_DIR / WEIGHTS_FILE)


def is_multijob_run(path: Path) -> bool:
    """A folder written by ``fedfleet multijob`` (it has jobs/ and schedule.jsonl)."""
    return (path / JOBS_DIR).is_dir() and (path / SCHEDULE_FILE).is_file()


def read_schedule(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(path / SCHEDULE_FILE)
