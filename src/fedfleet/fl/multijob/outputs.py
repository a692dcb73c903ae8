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

from pathlib import Path
from typing import Any

from fedfleet.fl.history import read_jsonl, write_jsonl
from fedfleet.fl.run_dir import RunDirectory
from fedfleet.fl.scheduling import SchedulingPolicy
from fedfleet.fl.scheduling.rlds import WEIGHTS_FILE, RldsPolicy

JOBS_DIR = "jobs"
SCHEDULE_FILE = "schedule.jsonl"
SCHEDULER_DIR = "scheduler"


class MultiJobDirectory(RunDirectory):
    """Writes a multi-job run directory (see the module docstring); its config is a MultiJobConfig."""

    def job_dir(self, name: str) -> RunDirectory:
        return RunDirectory(self.path / JOBS_DIR / name)

    def write_schedule(self, schedule: list[dict[str, Any]]) -> None:
        write_jsonl(self.path / SCHEDULE_FILE, schedule)

    def save_policy(self, policy: SchedulingPolicy) -> Path | None:
        """The RLDS policy's weights (other policies learn nothing to keep)."""
        if not isinstance(policy, RldsPolicy):
            return None
        (self.path / SCHEDULER_DIR).mkdir(exist_ok=True)
        return policy.save(self.path / SCHEDULER_DIR / WEIGHTS_FILE)


def is_multijob_run(path: Path) -> bool:
    """A folder written by ``fedfleet multijob`` (it has a jobs/ folder)."""
    return (path / JOBS_DIR).is_dir()


def read_schedule(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(path / SCHEDULE_FILE)
