"""Simulated devices and the time model that turns work into virtual seconds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fedfleet.config import FleetConfig
from fedfleet.errors import ConfigError
from fedfleet.seeding import EngineStream, stream

BYTES_PER_PARAM = 4  # float32 on the wire


@dataclass(frozen=True)
class DeviceProfile:
    """One device's capabilities.

    Attributes
    ----------
    device_id : int
    speed : float
        Local training throughput in samples per second.
    uplink_mbps, downlink_mbps : float
        Bandwidth in megabits per second.
    availability : float
        Probability the device is online when a round starts.
    """

    device_id: int
    speed: float
    uplink_mbps: float
    downlink_mbps: float
    availability: float


def make_fleet(config: FleetConfig, num_devices: int, seed: int) -> list[DeviceProfile]:
    """Generate ``num_devices`` profiles.

    ``uniform``: every device at ``base_speed`` and ``bandwidth_mbps``. ``heterogeneous``:
    speeds log-uniform over a ``speed_spread``-fold range centred (geometrically) on
    ``base_speed``, bandwidths log-normal (sigma 0.5) around ``bandwidth_mbps``, as measured
    device populations spread over more than an order of magnitude.
    """
    rng = stream(seed, EngineStream.FLEET)
    if config.profile == "uniform":
        speeds = np.full(num_devices, config.base_speed)
        uplinks = np.full(num_devices, config.bandwidth_mbps)
    else:
        half_span = np.log(config.speed_spread) / 2
        speeds = config.base_speed * np.exp(rng.uniform(-half_span, half_span, num_devices))
        uplinks = config.bandwidth_mbps * rng.lognormal(0.0, 0.5, num_devices)
    return [
        DeviceProfile(i, float(s), float(u), float(5 * u), config.availability)
        for i, (s, u) in enumerate(zip(speeds, uplinks, strict=True))
    ]


class TimeModel:
    """Virtual duration of one update: download + local compute + upload.

    Compute is ``samples * epochs / speed`` stretched by a shifted exponential,
    ``1 + fluctuation * Exp(1)``, the usual model of straggling on shared devices.

    Parameters
    ----------
    fluctuation : float
        Mean relative slow-down of compute; 0 makes times deterministic.
    """

    def __init__(self, fluctuation: float = 0.2) -> None:
        self.fluctuation = fluctuation

    def update_time(
        self,
        device: DeviceProfile,
        num_samples: int,
        epochs: int,
        num_params: int,
        rng: np.random.Generator,
        compute_scale: float = 1.0,
    ) -> float:
        """Seconds from sending the model to receiving the update."""
        download, compute, upload = self.phases(device, num_samples, epochs, num_params, rng, compute_scale)
        return download + compute + upload

    def phases(
        self,
        device: DeviceProfile,
        num_samples: int,
        epochs: int,
        num_params: int,
        rng: np.random.Generator,
        compute_scale: float = 1.0,
    ) -> tuple[float, float, float]:
        """(download, compute, upload) seconds of one update; one draw from ``rng``.

        ``compute_scale`` is the model's training cost relative to the one ``device.speed`` was
        measured on (a pruned model's share of the original's training FLOPs).
        """
        megabits = num_params * BYTES_PER_PARAM * 8 / 1e6
        stretch = 1.0 + self.fluctuation * rng.exponential(1.0)
        compute = num_samples * epochs * compute_scale / device.speed * stretch
        download, upload = megabits / device.downlink_mbps, megabits / device.uplink_mbps
        if not math.isfinite(download + compute + upload):  # e.g. fleet.base_speed=1e-320
            raise ConfigError(
                f"device {device.device_id} would take infinitely long for one update (speed "
                f"{device.speed:.3g} samples/s, uplink {device.uplink_mbps:.3g} Mbit/s); raise "
                "fleet.base_speed or fleet.bandwidth_mbps")
        return download, compute, upload


class VirtualClock:
    """Simulated time in seconds; only the time model moves it."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def advance_to(self, moment: float) -> None:
        if not math.isfinite(moment):
            raise ConfigError(f"virtual time overflows after {self.now:.3g} s; raise fleet.base_speed or "
                              "fleet.bandwidth_mbps, or lower train.rounds")
        if moment < self.now:
            raise ValueError(f"virtual time cannot go back from {self.now} to {moment}")
        self.now = moment
