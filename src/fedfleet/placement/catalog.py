"""Device catalogs: the device types a job may rent, the links between them, and the job.

A catalog is a YAML file::

    job:     {batch_size: 512, samples: 1.0e8, throughput_target: 20000}
             # or: objective: max_throughput, budget_per_hour: 40 (throughput_target: the least accepted)
    devices:
      - {name: cpu, kind: cpu, count: 16, flops: 2.0e12, memory_gb: 256, price_per_hour: 1.2}
      - {name: v100, kind: gpu, count: 8, flops: 3.0e13, memory_gb: 32, price_per_hour: 3.1,
         efficiency: {embedding: 0.05}}
    links:   [{between: [cpu, v100], gbps: 25}]
    default_link_gbps: 10
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fedfleet.config import format_validation_error, read_yaml
from fedfleet.errors import ConfigError

GIB = 2.0**30
GBIT = 1e9 / 8  # bytes per second in one Gbit/s


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DeviceType(_Strict):
    """One rentable device type; exactly one of ``flops`` and ``speed`` is given."""

    name: str
    kind: Literal["cpu", "gpu", "accelerator"] = "cpu"
    count: int = Field(ge=1)  # instances available
    flops: float | None = Field(None, gt=0)  # effective training FLOP/s of one instance
    speed: float | None = Field(None, gt=0)  # times faster than the profile's reference CPU
    memory_gb: float = Field(gt=0)  # GiB usable by one instance
    price_per_hour: float = Field(ge=0)  # currency units per instance-hour
    intra_gbps: float = Field(25.0, gt=0)  # between instances of this type: all-reduce, same-type stages
    efficiency: dict[str, float] = Field(default_factory=dict)  # layer kind → share of peak

    @model_validator(mode="after")
    def _one_speed_measure(self) -> DeviceType:
        if (self.flops is None) == (self.speed is None):
            raise ValueError(f"device {self.name!r} needs exactly one of 'flops' and 'speed'")
        if any(value <= 0 for value in self.efficiency.values()):
            raise ValueError(f"device {self.name!r} has a non-positive efficiency")
        return self


class Link(_Strict):
    """Bandwidth between the stages on two device types (symmetric)."""

    between: tuple[str, str]
    gbps: float = Field(gt=0)


class JobSpec(_Strict):
    """What is being trained and how fast it must go."""

    batch_size: int = Field(512, ge=1)  # global batch, split over a stage's instances
    samples: float = Field(1e8, gt=0)  # samples to process over the whole training
    throughput_target: float = Field(1000.0, gt=0)  # samples/s the pipeline must sustain
    state_factor: float = Field(4.0, ge=1)  # parameter bytes × this = weights+grads+optimizer
    objective: Literal["min_cost", "max_throughput"] = "min_cost"  # max_throughput: within budget_per_hour
    budget_per_hour: float | None = Field(None, gt=0)  # most Σ instances × price per hour (max_throughput)

    @model_validator(mode="after")
    def _budget_for_max_throughput(self) -> JobSpec:
        if self.objective == "max_throughput" and self.budget_per_hour is None:
            raise ValueError("objective max_throughput needs job.budget_per_hour (rental per hour it may spend)")
        return self


class DeviceCatalog(_Strict):
    """Device types, their interconnect and the job to place."""

    job: JobSpec = JobSpec()
    devices: tuple[DeviceType, ...] = Field(min_length=1)
    links: tuple[Link, ...] = ()
    default_link_gbps: float = Field(10.0, gt=0)  # between types with no listed link

    @model_validator(mode="after")
    def _names_are_known(self) -> DeviceCatalog:
        names = [device.name for device in self.devices]
        if len(set(names)) != len(names):
            raise ValueError("device names must be unique")
        for link in self.links:
            unknown = [name for name in link.between if name not in names]
            if unknown:
                raise ValueError(f"link names unknown device {unknown[0]!r}")
        return self

    @property
    def names(self) -> list[str]:
        return [device.name for device in self.devices]

    def link_bandwidth(self) -> np.ndarray:
        """Bytes/s between stages on two types, shape (T, T).

        The diagonal is the link between two stages on one type: instances of that type
        talk over its ``intra_gbps`` interconnect.
        """
        index = {name: i for i, name in enumerate(self.names)}
        bandwidth = np.full((len(self.devices),) * 2, self.default_link_gbps * GBIT)
        for link in self.links:
            a, b = (index[name] for name in link.between)
            bandwidth[a, b] = bandwidth[b, a] = link.gbps * GBIT
        np.fill_diagonal(bandwidth, [device.intra_gbps * GBIT for device in self.devices])
        return bandwidth

    def with_job(self, **changes: Any) -> DeviceCatalog:
        """A copy with some job fields replaced (validated)."""
        job = {**self.job.model_dump(), **{k: v for k, v in changes.items() if v is not None}}
        return build_catalog({**self.model_dump(), "job": job})


def build_catalog(raw: dict[str, Any], source: str = "catalog") -> DeviceCatalog:
    """Validate a catalog mapping, with a one-line error naming the bad key."""
    try:
        return DeviceCatalog.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation_error(exc)}") from None


def load_catalog(path: str | Path) -> DeviceCatalog:
    """Read and validate a device catalog YAML file."""
    return build_catalog(read_yaml(path, what="device catalog"), source=f"device catalog {path}")
