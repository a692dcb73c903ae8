"""When devices are online: always, by random on/off periods, or by a recorded trace.

A trace file lists each device's online intervals in virtual seconds, either as CSV with the
header ``device_id,start_s,end_s`` (one interval per line) or as JSON mapping device ids to
lists of ``[start_s, end_s]`` pairs, e.g. ``{"0": [[0, 120], [300, 900]], "1": [[0, 1e9]]}``.
A device the trace does not name is never online, nor is any device after its last interval.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
from pathlib import Path

import numpy as np

from fedfleet.config import DropoutConfig
from fedfleet.errors import ConfigError
from fedfleet.seeding import EngineStream, stream


class Availability:
    """Every device always online (the default); :class:`IntervalAvailability` describes presence by intervals."""

    def online(self, device: int, time: float) -> bool:
        """Whether ``device`` is online at ``time``."""
        del device, time
        return True

    def online_until(self, device: int, time: float) -> float:
        """End of the online interval holding ``time`` (``time`` itself when offline)."""
        del device, time
        return math.inf

    def next_online(self, device: int, time: float) -> float | None:
        """The first moment at or after ``time`` the device is online; None if never again."""
        del device
        return time


class IntervalAvailability(Availability):
    """Presence given by each device's online intervals ``[start, end)``."""

    def intervals(self, device: int, until: float) -> list[tuple[float, float]]:
        """The device's online intervals, sorted, covering at least up to ``until``."""
        raise NotImplementedError

    def online(self, device: int, time: float) -> bool:
        return self._current(device, time) is not None

    def online_until(self, device: int, time: float) -> float:
        current = self._current(device, time)
        return time if current is None else current[1]

    def next_online(self, device: int, time: float) -> float | None:
        if self.online(device, time):
            return time
        starts = [start for start, _ in self.intervals(device, time) if start > time]
        return starts[0] if starts else None

    def _current(self, device: int, time: float) -> tuple[float, float] | None:
        spans = self.intervals(device, time)
        index = bisect.bisect_right([start for start, _ in spans], time) - 1
        if index >= 0 and spans[index][0] <= time < spans[index][1]:
            return spans[index]
        return None


class DropoutAvailability(IntervalAvailability):
    """Alternating online/offline periods with exponential lengths, drawn per device.

    Each device starts online with the stationary probability ``on / (on + off)``; its periods
    come from its own random stream of the run seed, so they do not depend on anything else
    the simulation draws and are the same after a resume.
    """

    def __init__(self, config: DropoutConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self._spans: dict[int, list[tuple[float, float]]] = {}
        self._state: dict[int, tuple[float, bool, np.random.Generator]] = {}

    def intervals(self, device: int, until: float) -> list[tuple[float, float]]:
        on, off = self.config.mean_online_s, self.config.mean_offline_s
        if device not in self._state:
            rng = stream(self.seed, EngineStream.DROPOUT, device)
            self._state[device] = (0.0, bool(rng.random() < on / (on + off)), rng)
            self._spans[device] = []
        moment, is_on, rng = self._state[device]
        spans = self._spans[device]
        while not spans or spans[-1][0] <= until:  # always know the next online period after ``until``
            length = float(rng.exponential(on if is_on else off))
            if is_on:
                spans.append((moment, moment + length))
            moment, is_on = moment + length, not is_on
        self._state[device] = (moment, is_on, rng)
        return spans


class TraceAvailability(IntervalAvailability):
    """Online intervals replayed from a trace file (see the module docstring)."""

    def __init__(self, spans: dict[int, list[tuple[float, float]]]) -> None:
        self.spans = spans

    def intervals(self, device: int, until: float) -> list[tuple[float, float]]:
        del until
        return self.spans.get(device, [])


def read_trace(path: str | Path, num_devices: int) -> TraceAvailability:
    """Read a CSV or JSON availability trace; a one-line ConfigError for a bad file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise ConfigError(f"fleet.trace: cannot read {path}; pass an existing CSV or JSON file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"fleet.trace {path} is not a text file (not UTF-8); pass a CSV or JSON file") from None
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError("the JSON must map device ids to lists of [start_s, end_s]")
            rows = [(int(device), float(a), float(b)) for device, pairs in raw.items() for a, b in pairs]
        else:
            reader = csv.DictReader(text.splitlines())
            if reader.fieldnames is None or not {"device_id", "start_s", "end_s"} <= set(reader.fieldnames):
                raise ValueError("the CSV needs the header device_id,start_s,end_s")
            rows = [(int(r["device_id"]), float(r["start_s"]), float(r["end_s"])) for r in reader]
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"fleet.trace {path} is malformed: {exc}".splitlines()[0]) from None
    spans: dict[int, list[tuple[float, float]]] = {}
    for device, start, end in rows:
        if not 0 <= device < num_devices:
            raise ConfigError(f"fleet.trace {path} names device {device}; the fleet has devices 0..{num_devices - 1}")
        if not (0 <= start < end) or math.isnan(end):
            raise ConfigError(f"fleet.trace {path}: device {device} has interval [{start}, {end}]; "
                              "need 0 <= start_s < end_s")
        spans.setdefault(device, []).append((start, end))
    return TraceAvailability({d: _merged(s) for d, s in spans.items()})


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def build_availability(dropout: DropoutConfig | None, trace: str | None, num_devices: int,
                       seed: int) -> Availability:
    """The availability model a fleet config asks for."""
    if trace is not None and dropout is not None:
        raise ConfigError("set fleet.trace or fleet.dropout, not both (a trace already says when devices are away)")
    if trace is not None:
        return read_trace(trace, num_devices)
    if dropout is not None:
        return DropoutAvailability(dropout, seed)
    return Availability()
