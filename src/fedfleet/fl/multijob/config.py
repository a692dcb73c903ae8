"""Validated multi-job configuration: a shared fleet, a scheduler and a list of jobs (docs/multijob.md).

Each job's ``data``, ``model``, ``train``, ``strategy``, ``aggregator`` and ``validation``
sections are the run config's own sections, and each job is checked as a whole run config
too (:func:`job_run_config`), so a job accepts exactly what ``fedfleet run`` accepts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from fedfleet.config import (
    ASYNC_STRATEGY_KEYS,
    AggregatorConfig,
    BackendConfig,
    ConfigSection,
    DataConfig,
    FleetConfig,
    ModelConfig,
    RunConfig,
    StrategyConfig,
    TrainConfig,
    ValidationConfig,
    load_model,
    validate_mapping,
)
from fedfleet.errors import ConfigError
from fedfleet.fl.scheduling.config import SchedulerConfig
from fedfleet.seeding import EngineStream, derive_seed

JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class JobConfig(ConfigSection):
    """One FL job of a multi-job run: its own data partition, model, training and aggregation."""

    name: str = ""  # folder name of the job in the run directory; empty: job<index>
    data: DataConfig = DataConfig()  # data.num_clients is the run's num_devices (every device holds data)
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()  # train.mode must be sync: jobs train in rounds
    strategy: StrategyConfig = StrategyConfig()
    aggregator: AggregatorConfig = AggregatorConfig()
    validation: ValidationConfig = ValidationConfig()


class MultiJobConfig(ConfigSection):
    """Several jobs sharing one fleet; see configs/multijob/tiny.yaml."""

    name: str = "multijob"
    seed: int = Field(0, ge=0, lt=2**32)
    num_devices: int = Field(100, ge=1)  # devices of the shared fleet; each holds a partition of every job's data
    fleet: FleetConfig = FleetConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    jobs: list[JobConfig] = Field(min_length=1)
    stop_at_target: bool = False  # a job stops once it reaches its train.target_accuracy, freeing its devices
    max_virtual_time_s: float | None = Field(None, gt=0)  # stop every job when the virtual clock passes this
    checkpoint_every: int = Field(10, ge=0)  # completed rounds (all jobs together) between checkpoints; 0 disables
    backend: BackendConfig = BackendConfig()

    @model_validator(mode="before")
    @classmethod
    def _devices_hold_every_job(cls, raw: Any) -> Any:
        """A job that does not name data.num_clients gets num_devices."""
        if not isinstance(raw, dict) or not isinstance(raw.get("jobs"), list):
            return raw
        devices = raw.get("num_devices", cls.model_fields["num_devices"].default)
        jobs = []
        for job in raw["jobs"]:
            if isinstance(job, dict) and isinstance(job.get("data", {}), dict):
                job = {**job, "data": {"num_clients": devices, **job.get("data", {})}}
            jobs.append(job)
        return {**raw, "jobs": jobs}

    @model_validator(mode="after")
    def _jobs_fit_the_fleet(self) -> MultiJobConfig:
        if self.backend.name == "ray":
            raise ConfigError("backend.name=ray is not supported by multi-job runs (each job would hold its own "
                              "actors on one Ray); use backend.name=local with backend.workers")
        seen: set[str] = set()
        for index, job in enumerate(self.jobs):
            if not job.name:
                object.__setattr__(job, "name", f"job{index}")
            where = f"jobs.{index} ({job.name})"
            if not JOB_NAME.fullmatch(job.name) or job.name in seen:
                raise ConfigError(f"jobs.{index}.name {job.name!r} must be unique and made of letters, digits, "
                                  "'_', '.' and '-' (it names the job's folder)")
            seen.add(job.name)
            if job.data.num_clients != self.num_devices:
                raise ConfigError(f"{where}: data.num_clients={job.data.num_clients} differs from "
                                  f"num_devices={self.num_devices}; every device holds data of every job, "
                                  "so drop data.num_clients")
            if job.train.clients_per_round > self.num_devices:
                raise ConfigError(f"{where}: train.clients_per_round={job.train.clients_per_round} is more "
                                  f"devices than the fleet's num_devices={self.num_devices}; lower it")
            if job.strategy.name in ASYNC_STRATEGY_KEYS:
                raise ConfigError(f"{where}: strategy {job.strategy.name!r} is asynchronous; multi-job runs "
                                  "train every job in synchronous rounds (choose fedavg, fedprox, fednova or noniid)")
            if job.train.mode != "sync":
                raise ConfigError(f"{where}: train.mode={job.train.mode} is not possible here; multi-job runs "
                                  "train every job in synchronous rounds (set train.mode=sync)")
            job_run_config(self, index)
        return self


def job_run_config(config: MultiJobConfig, index: int) -> RunConfig:
    """Job ``index`` as a run config: its sections, the shared fleet and backend, its own seed.

    Raises
    ------
    ConfigError
        The job is not a valid run (named ``jobs.<index>``).
    """
    job = config.jobs[index]
    raw = {"name": f"{config.name}-{job.name}", "seed": derive_seed(config.seed, EngineStream.MULTIJOB, index),
           "data": job.data.model_dump(), "model": job.model.model_dump(), "train": job.train.model_dump(),
           "strategy": job.strategy.model_dump(exclude_none=True), "aggregator": job.aggregator.model_dump(),
           "validation": job.validation.model_dump(), "fleet": config.fleet.model_dump(),
           "backend": config.backend.model_dump(), "checkpoint_every": 0}
    try:
        return validate_mapping(RunConfig, raw)
    except ConfigError as exc:
        raise ConfigError(f"jobs.{index} ({job.name}): {exc}") from None


def load_multijob_config(source: str | Path | dict[str, Any],
                         overrides: list[str] | dict[str, Any] | None = None) -> MultiJobConfig:
    """Load and validate a multi-job config (``--set jobs.0.train.rounds=3`` reaches into the list)."""
    return load_model(MultiJobConfig, source, overrides)
