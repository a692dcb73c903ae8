"""The HeterPS cost model: schemes → stages → provisioned instances → throughput and cost.

A *scheme* gives each layer a device-type index. Consecutive layers on one type merge into
a *stage*, unless a *split* (a stage-boundary gene) starts a new stage at a layer: then two
neighbouring stages share a type, linked at that type's ``intra_gbps``. Every contiguous
segment of layers on every type is costed once, up front (``O(L² T K)`` array work), so
evaluating a scheme afterwards is a handful of look-ups.
The formulas are listed in docs/placement.md; symbols below follow that page.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedfleet.errors import ConfigError
from fedfleet.placement.catalog import GBIT, GIB, DeviceCatalog
from fedfleet.placement.profile import ModelProfile

Run = tuple[int, int, int]  # (first layer, one past the last layer, device-type index)


@dataclass(frozen=True)
class Stage:
    """One pipeline stage of a plan."""

    first: int  # index of its first layer
    last: int  # index of its last layer (inclusive)
    device: str  # device-type name
    instances: int  # data-parallel instances k
    time_s: float  # per-batch compute + all-reduce time with k instances
    transfer_s: float  # per-batch activation+gradient transfer to the next stage (0 if last)
    memory_gib: float  # memory one instance needs


@dataclass(frozen=True)
class Plan:
    """A costed placement; ``cost`` is in the catalog's currency."""

    scheme: tuple[int, ...]  # device-type index per layer
    splits: tuple[int, ...]  # layers that start a stage on the same type as the layer before
    stages: tuple[Stage, ...]
    throughput: float  # samples/s of the pipeline (its slowest stage or link)
    training_hours: float  # job.samples / throughput / 3600
    rental_per_hour: float  # Σ instances × price per hour
    cost: float  # training_hours × rental_per_hour
    bottleneck: str  # the stage or link that sets the throughput


def merge_stages(scheme: np.ndarray | Sequence[int], splits: Collection[int] = ()) -> list[Run]:
    """Merge consecutive layers on one device type into ``(first, end, type)`` runs.

    Parameters
    ----------
    scheme : sequence of int
        Device-type index per layer.
    splits : collection of int
        Layers that start a new stage even when the layer before is on the same type
        (the stage-boundary genes); a split between two types is implied and ignored.
    """
    types = scheme.tolist() if isinstance(scheme, np.ndarray) else list(scheme)
    runs: list[Run] = []
    start = 0
    for index in range(1, len(types)):
        if types[index] != types[start] or index in splits:
            runs.append((start, index, types[start]))
            start = index
    runs.append((start, len(types), types[start]))
    return runs


def scheme_from_runs(runs: Sequence[Run], num_layers: int) -> np.ndarray:
    """The scheme (type per layer) of runs that cover ``range(num_layers)``."""
    scheme = np.empty(num_layers, dtype=np.int64)
    for first, end, device in runs:
        scheme[first:end] = device
    return scheme


def splits_from_runs(runs: Sequence[Run]) -> tuple[int, ...]:
    """The splits that, with the runs' scheme, :func:`merge_stages` needs to rebuild ``runs``."""
    return tuple(first for (_, _, before), (first, _, device) in itertools.pairwise(runs) if before == device)


class PlacementProblem:
    """Costs of every stage and link for one model on one catalog.

    Parameters
    ----------
    profile : ModelProfile
        Layers to place.
    catalog : DeviceCatalog
        Device types, links and the job (batch, samples, throughput target).

    Attributes
    ----------
    instances : ndarray of int, shape (L+1, L+1, T)
        ``instances[i, j, t]``: fewest instances of type t that let layers ``i..j-1`` meet
        the throughput target within memory and the type's count; 0 when none can.
    stage_time : ndarray, shape (L+1, L+1, T)
        Per-batch time of that stage with those instances (inf when infeasible).
    link_throughput : ndarray, shape (L+1, T, T)
        Samples/s of the link carrying the boundary before layer j from type a to type b
        (a = b: between two stages on one type, over its ``intra_gbps``).
    rates : ndarray
        Every throughput, at least the target, of a stage with any instance count that fits
        in memory, or of a link, ascending and unique: the pipeline throughputs a plan can have.
    """

    def __init__(self, profile: ModelProfile, catalog: DeviceCatalog) -> None:
        self.profile = profile
        self.catalog = catalog
        self.job = catalog.job
        self.num_layers = len(profile.layers)
        self.num_types = len(catalog.devices)
        self.prices = np.array([d.price_per_hour for d in catalog.devices])
        self.counts = np.array([d.count for d in catalog.devices])
        self.sample_seconds = self._sample_seconds()  # (L, T)
        if (self.sample_seconds == 0).any(axis=1).all():
            # then some plan could consist of zero-time stages only: infinite throughput at no cost
            raise ConfigError(
                f"profile {profile.name!r}: every layer takes 0 s per sample on some device type "
                "(flops 0, or ref_time_s 0 for 'speed' devices), so throughput and cost are "
                "meaningless; give the layers that compute their flops (or ref_time_s)")
        self._cost_segments()
        activation = np.array([layer.activation_bytes for layer in profile.layers])
        with np.errstate(divide="ignore"):
            # boundary before layer j carries layer j-1's output forward and its gradient back
            per_sample = np.concatenate(([np.inf], 1.0 / (2.0 * activation[:-1]), [np.inf]))
        self.link_throughput = per_sample[:, None, None] * catalog.link_bandwidth()[None]
        links = self.link_throughput[np.isfinite(self.link_throughput)]
        self.rates = np.unique(np.concatenate((self._stage_rates, links[links >= self.job.throughput_target])))
        # nested lists: scoring a scheme indexes them a few times per stage, faster than numpy
        self._lookup: tuple[list[Any], ...] = tuple(table.tolist() for table in (
            self.instances, self.rental, self.stage_throughput, self.best_throughput,
            self.link_throughput))
        self._counts: list[int] = self.counts.tolist()

    def _sample_seconds(self) -> np.ndarray:
        """c[l, t]: training seconds per sample of layer l on one instance of type t."""
        seconds = np.empty((self.num_layers, self.num_types))
        for t, device in enumerate(self.catalog.devices):
            for index, layer in enumerate(self.profile.layers):
                if device.speed is not None:
                    if layer.ref_time_s is None:
                        raise ConfigError(
                            f"device {device.name!r} is given by 'speed' but layer {layer.name!r} "
                            "has no ref_time_s; give the device 'flops' or profile the model here")
                    base = layer.ref_time_s / device.speed
                else:
                    assert device.flops is not None  # the catalog guarantees one of the two
                    base = layer.flops / device.flops
                seconds[index, t] = base / device.efficiency.get(layer.kind, 1.0)
        return seconds

    def _cost_segments(self) -> None:
        layers = self.profile.layers
        batch = self.job.batch_size
        target = self.job.throughput_target
        size = self.num_layers + 1

        def segment_sum(values: np.ndarray) -> np.ndarray:
            prefix = np.concatenate((np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)))
            return prefix[None, :] - prefix[:, None]  # [i, j] = Σ values[i:j]

        compute = segment_sum(self.sample_seconds)  # (L+1, L+1, T) seconds per sample
        params = segment_sum(np.array([layer.param_bytes for layer in layers]))[..., None]
        acts = segment_sum(np.array([layer.activation_bytes for layer in layers]))[..., None]
        grads = segment_sum(np.array([layer.gradient_bytes for layer in layers]))[..., None]
        valid = np.triu(np.ones((size, size), dtype=bool), k=1)[..., None]
        capacity = np.array([d.memory_gb for d in self.catalog.devices]) * GIB
        intra = np.array([d.intra_gbps for d in self.catalog.devices]) * GBIT

        shape = (size, size, self.num_types)
        self.instances = np.zeros(shape, dtype=np.int64)
        self.stage_time = np.full(shape, np.inf)
        self.stage_memory = np.full(shape, np.inf)
        self.best_throughput = np.zeros(shape)  # most samples/s within memory and count
        self.least_memory = np.full(shape, np.inf)  # bytes per instance at the most instances
        rates = []
        for k in range(1, min(int(self.counts.max()), batch) + 1):
            allowed = valid & (k <= self.counts)
            time = batch / k * compute + 2.0 * (k - 1) / k * grads / intra
            memory = np.broadcast_to(self.job.state_factor * params + batch / k * acts, shape)
            with np.errstate(divide="ignore"):  # empty segments (i >= j) take no time
                throughput = batch / time
            fits = allowed & (memory <= capacity)
            self.least_memory = np.where(allowed, np.minimum(self.least_memory, memory), self.least_memory)
            self.best_throughput = np.where(fits, np.maximum(self.best_throughput, throughput),
                                            self.best_throughput)
            chosen = fits & (throughput >= target) & (self.instances == 0)
            rates.append(np.unique(throughput[fits & (throughput >= target) & np.isfinite(throughput)]))
            self.instances[chosen] = k
            self.stage_time[chosen] = time[chosen]
            self.stage_memory[chosen] = memory[chosen]
        self._stage_rates = np.concatenate(rates)
        self.rental = self.instances * self.prices  # per hour, (L+1, L+1, T)
        with np.errstate(divide="ignore"):  # a stage of zero-compute layers (ReLU: flops 0) is never the bottleneck
            self.stage_throughput = np.where(self.instances > 0, batch / self.stage_time, 0.0)

    # -- evaluating schemes -------------------------------------------------------------

    def score(self, scheme: np.ndarray | Sequence[int], splits: Collection[int] = ()) -> tuple[float, float]:
        """``(violation, cost)`` of a scheme: violation 0 means feasible, else cost is inf.

        The violation grows with how far a scheme is from feasible (infeasible stages,
        slow links, instances over the counts), so a search can climb towards feasibility.
        ``splits`` are the scheme's same-type stage boundaries (see :func:`merge_stages`).
        """
        return self.score_runs(merge_stages(scheme, splits))

    def score_runs(self, runs: Sequence[Run]) -> tuple[float, float]:
        """:meth:`score` for already-merged runs."""
        instances, rental_table, stage_rate, best_rate, link_rate = self._lookup
        target = self.job.throughput_target
        violation = 0.0
        rental = 0.0
        throughput = np.inf
        used = [0] * self.num_types
        previous = -1
        for first, end, device in runs:
            k = instances[first][end][device]
            if k == 0:
                reachable = best_rate[first][end][device]
                violation += 2.0 - reachable / target if reachable < target else 1.0
            else:
                used[device] += k
                rental += rental_table[first][end][device]
                rate = stage_rate[first][end][device]
                if rate < throughput:
                    throughput = rate
            if previous >= 0:
                link = link_rate[first][previous][device]
                if link < throughput:
                    throughput = link
                if link < target:
                    violation += 1.0 - link / target
            previous = device
        for device, count in enumerate(self._counts):
            if used[device] > count:
                violation += (used[device] - count) / count
        if violation > 0:
            return violation, np.inf
        return 0.0, self.job.samples / throughput / 3600.0 * rental

    def plan(self, scheme: np.ndarray | Sequence[int], splits: Collection[int] = ()) -> Plan:
        """The full costed plan of a feasible scheme (see :meth:`score` for feasibility)."""
        return self.plan_runs(merge_stages(scheme, splits))

    def plan_runs(self, runs: Sequence[Run]) -> Plan:
        """:meth:`plan` for stage runs ``(first, end, type)`` that tile the layers."""
        names = self.catalog.names
        stages = []
        limits: list[tuple[float, str]] = []
        for position, (first, end, device) in enumerate(runs):
            transfer = 0.0
            if position + 1 < len(runs):
                following = runs[position + 1][2]
                link = float(self.link_throughput[end, device, following])
                transfer = self.job.batch_size / link
                limits.append((link, f"link {names[device]}→{names[following]} after layer {end - 1}"))
            stages.append(Stage(first=first, last=end - 1, device=names[device],
                                instances=int(self.instances[first, end, device]),
                                time_s=float(self.stage_time[first, end, device]),
                                transfer_s=transfer,
                                memory_gib=float(self.stage_memory[first, end, device] / GIB)))
            limits.append((float(self.stage_throughput[first, end, device]), f"stage {position}"))
        throughput, bottleneck = min(limits)
        rental = float(sum(self.rental[first, end, device] for first, end, device in runs))
        hours = self.job.samples / throughput / 3600.0 if throughput > 0 else np.inf
        scheme = scheme_from_runs(runs, self.num_layers)
        return Plan(scheme=tuple(int(t) for t in scheme), splits=splits_from_runs(runs), stages=tuple(stages),
                    throughput=throughput, training_hours=hours, rental_per_hour=rental,
                    cost=hours * rental, bottleneck=bottleneck)

