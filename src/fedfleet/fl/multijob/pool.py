"""Which job holds each device: the guard that keeps a device serving at most one job at a time."""

from __future__ import annotations

from collections.abc import Iterable

from fedfleet.errors import FedfleetError

FREE = -1


class DeviceCollision(FedfleetError):
    """A job was about to take a device another job holds (a scheduling bug, never silently allowed)."""


class DevicePool:
    """The holder (job index, or ``FREE``) of every device, as a plain list for checkpoints.

    Parameters
    ----------
    holders : list of int
        ``holders[d]`` is the job holding device ``d`` or ``FREE``; kept by reference, so the
        caller's run state always shows the pool.
    """

    def __init__(self, holders: list[int]) -> None:
        self.holders = holders

    def idle(self) -> list[int]:
        return [d for d, holder in enumerate(self.holders) if holder == FREE]

    def claim(self, devices: Iterable[int], job: int) -> None:
        """Give ``devices`` to ``job``; raises :class:`DeviceCollision` if any is held (then none is taken)."""
        devices = [int(d) for d in devices]
        if len(set(devices)) != len(devices):
            raise DeviceCollision(f"job {job} was given a device twice: {sorted(devices)}")
        for device in devices:
            if not 0 <= device < len(self.holders):
                raise DeviceCollision(f"job {job} was given device {device}, which is not in the fleet")
            if self.holders[device] != FREE:
                raise DeviceCollision(f"device {device} is held by job {self.holders[device]}; job {job} cannot "
                                      "take it until it returns (a device serves one job at a time)")
        for device in devices:
            self.holders[device] = job

    def release(self, device: int, job: int) -> None:
        """``job`` hands ``device`` back; raises :class:`DeviceCollision` if it did not hold it."""
        if self.holders[device] != job:
            raise DeviceCollision(f"job {job} returned device {device}, which job {self.holders[device]} holds")
        self.holders[device] = FREE
