"""Multi-job FL: several jobs share one fleet; each round's devices are chosen by a scheduling policy.

See docs/multijob.md and :mod:`fedfleet.fl.scheduling`.
"""

from fedfleet.fl.multijob.config import JobConfig, MultiJobConfig, job_run_config, load_multijob_config
from fedfleet.fl.multijob.outputs import MultiJobDirectory, is_multijob_run
from fedfleet.fl.multijob.pool import DeviceCollision, DevicePool
from fedfleet.fl.multijob.runner import Job, MultiJobRunner
from fedfleet.fl.multijob.simulation import (
    MultiJobResult,
    build_multijob_runner,
    expected_times,
    resume_multijob,
    run_multijob,
)

__all__ = ["DeviceCollision", "DevicePool", "Job", "JobConfig", "MultiJobConfig", "MultiJobDirectory",
           "MultiJobResult", "MultiJobRunner", "build_multijob_runner", "expected_times", "is_multijob_run",
           "job_run_config", "load_multijob_config", "resume_multijob", "run_multijob"]
