"""Robust aggregation: coordinate median, trimmed mean, Krum / multi-Krum and norm clipping.

The arithmetic lives in pure functions over stacked deltas ``(n, d)``; :class:`RobustAggregation`
wraps any synchronous strategy with them, so FedAvg, FedProx, FedNova (and any strategy that averages
through ``Strategy.combine``) keep their own plans, weights and normalisation.
:class:`ClippedArrivals` clips the updates of an asynchronous strategy (FedAsync, FedBuff, FedASMU).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fedfleet.config import AggregatorConfig
from fedfleet.errors import ConfigError
from fedfleet.fl.messages import ClientUpdate, LocalTrainingPlan
from fedfleet.fl.strategies.async_base import Arrival, AsyncStrategy
from fedfleet.fl.strategies.base import Combiner, FederationInfo, Strategy
from fedfleet.fl.validation import lower_median


def coordinate_median(deltas: torch.Tensor) -> torch.Tensor:
    """(n, d) → (d,): the median of each coordinate (the mean of the two middle values for even n)."""
    ordered = deltas.sort(dim=0).values
    middle = deltas.shape[0] // 2
    if deltas.shape[0] % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def trimmed_mean(deltas: torch.Tensor, trim_fraction: float) -> torch.Tensor:
    """(n, d) → (d,): per coordinate, drop the ``floor(trim_fraction * n)`` largest and smallest, average the rest.

    At least one value per coordinate is always kept.
    """
    n = deltas.shape[0]
    cut = min(int(trim_fraction * n), (n - 1) // 2)
    ordered = deltas.sort(dim=0).values
    return ordered[cut : n - cut].mean(dim=0)


def krum_scores(deltas: torch.Tensor, num_byzantine: int) -> torch.Tensor:
    """(n, d) → (n,): each update's summed squared distance to its ``n - f - 2`` nearest others (at least one)."""
    n = deltas.shape[0]
    if n == 1:
        return torch.zeros(1, dtype=deltas.dtype)
    squared = torch.cdist(deltas.double(), deltas.double()).square()  # (n, n), float64 against cancellation
    neighbours = max(1, n - num_byzantine - 2)
    others = squared.masked_fill(torch.eye(n, dtype=torch.bool), float("inf"))
    return others.sort(dim=1).values[:, :neighbours].sum(dim=1)


def krum_select(deltas: torch.Tensor, num_byzantine: int, keep: int) -> list[int]:
    """Indices of the ``keep`` updates with the lowest Krum scores (1: Krum, more: multi-Krum), best first."""
    scores = krum_scores(deltas, num_byzantine)
    return [int(i) for i in torch.argsort(scores, stable=True)[: max(1, min(keep, deltas.shape[0]))]]


def max_byzantine(n: int) -> int:
    """The most attackers Krum's guarantee covers among ``n`` updates: the largest f with n > 2f + 2."""
    return max(0, (n - 3) // 2)


def clip_factors(norms: torch.Tensor, bound: float) -> torch.Tensor:
    """(n,) → (n,): the scale ``min(1, bound / norm)`` that brings each norm within ``bound``."""
    return torch.clamp(bound / norms.clamp_min(torch.finfo(norms.dtype).tiny), max=1.0)


class MedianCombiner:
    """Replaces a strategy's weighted mean by the coordinate median (weights ignored)."""

    def __call__(self, vectors: Sequence[torch.Tensor], weights: np.ndarray) -> torch.Tensor:
        return coordinate_median(torch.stack(list(vectors)))


class TrimmedMeanCombiner:
    """Replaces a strategy's weighted mean by the coordinate trimmed mean (weights ignored)."""

    def __init__(self, trim_fraction: float) -> None:
        self.trim_fraction = trim_fraction

    def __call__(self, vectors: Sequence[torch.Tensor], weights: np.ndarray) -> torch.Tensor:
        return trimmed_mean(torch.stack(list(vectors)), self.trim_fraction)


def _combiner(config: AggregatorConfig) -> Combiner | None:
    if config.name == "median":
        return MedianCombiner()
    if config.name == "trimmed_mean":
        return TrimmedMeanCombiner(config.trim_fraction)
    return None


class NormClip:
    """Scales deltas to at most a bound: ``clip_norm``, or for ``"auto"`` the lower median of the
    update norms of the last ``clip_history`` aggregations, the current one included.

    A minority of attackers cannot raise the auto bound, and it never depends on the global model.
    """

    def __init__(self, config: AggregatorConfig) -> None:
        self.config = config
        self.history: deque[list[float]] = deque(maxlen=config.clip_history)

    def bound(self, norms: torch.Tensor) -> float:
        """The bound for this aggregation's update norms (recorded for later "auto" bounds)."""
        if self.config.clip_norm != "auto":
            assert self.config.clip_norm is not None
            return float(self.config.clip_norm)
        self.history.append([float(x) for x in norms])
        return lower_median([x for recorded in self.history for x in recorded])

    def __call__(self, deltas: torch.Tensor) -> torch.Tensor:
        """(n, d) → (n, d), each row scaled to at most the bound."""
        norms = deltas.norm(dim=1)
        return deltas * clip_factors(norms, self.bound(norms))[:, None]

    def state_dict(self) -> dict[str, Any]:
        return {"norm_history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = deque(state["norm_history"], maxlen=self.config.clip_history)


class RobustAggregation(Strategy):
    """Any synchronous strategy, with its updates clipped and screened and its mean replaced as configured.

    Per aggregation: (1) with ``clip_norm``, each delta is scaled by :class:`NormClip`;
    (2) ``krum`` / ``multi_krum`` keep the 1 / m updates with the lowest Krum scores;
    (3) the wrapped strategy aggregates what is left, with ``median`` / ``trimmed_mean`` in place of
    its weighted mean.

    Parameters
    ----------
    inner : Strategy
        The strategy whose plan, weights and update rule are kept.
    config : AggregatorConfig
    """

    def __init__(self, inner: Strategy, config: AggregatorConfig) -> None:
        combiner = _combiner(config)
        if combiner is not None and not inner.combines_cohort:
            raise ConfigError(f"aggregator.name={config.name} replaces a cohort average, which strategy "
                              f"{inner.name!r} does not compute; use krum, multi_krum or clip_norm with it")
        if combiner is not None:
            inner.combiner = combiner
        self.inner = inner
        self.config = config
        self.name = inner.name
        self.combines_cohort = inner.combines_cohort
        self.clip = NormClip(config) if config.clip_norm is not None else None

    def setup(self, info: FederationInfo) -> None:
        self.inner.setup(info)

    def configure_train(self, plan: LocalTrainingPlan, round_index: int) -> LocalTrainingPlan:
        return self.inner.configure_train(plan, round_index)

    def aggregate(self, global_params: torch.Tensor, updates: Sequence[ClientUpdate]) -> torch.Tensor:
        return self.inner.aggregate(global_params, self.screen(updates))

    def check_update(self, update: ClientUpdate) -> str | None:
        return self.inner.check_update(update)

    def screen(self, updates: Sequence[ClientUpdate]) -> list[ClientUpdate]:
        """The updates the wrapped strategy aggregates: clipped, then chosen by Krum where configured."""
        deltas = torch.stack([u.delta for u in updates])  # (n, d)
        if self.clip is not None:
            deltas = self.clip(deltas)
        kept = list(range(len(updates)))
        if self.config.name in ("krum", "multi_krum"):
            f = max_byzantine(len(updates)) if self.config.num_byzantine is None else self.config.num_byzantine
            keep = 1 if self.config.name == "krum" else (self.config.multi_krum_m or len(updates) - f)
            kept = krum_select(deltas, f, keep)
        return [dataclasses.replace(updates[i], delta=deltas[i]) for i in kept]

    def state_dict(self) -> dict[str, Any]:
        clip = self.clip.state_dict() if self.clip is not None else {}
        return {"inner": self.inner.state_dict(), **clip}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        if self.clip is not None:
            self.clip.load_state_dict(state)


class ClippedArrivals(AsyncStrategy):
    """An asynchronous strategy whose arriving deltas are clipped by :class:`NormClip` (one per arrival)."""

    def __init__(self, inner: AsyncStrategy, config: AggregatorConfig) -> None:
        self.inner = inner
        self.name = inner.name
        self.refresh_at = inner.refresh_at
        self.clip = NormClip(config)

    def setup(self, info: FederationInfo) -> None:
        self.inner.setup(info)

    def configure_train(self, plan: LocalTrainingPlan, round_index: int) -> LocalTrainingPlan:
        return self.inner.configure_train(plan, round_index)

    def receive(self, global_params: torch.Tensor, arrival: Arrival) -> torch.Tensor | None:
        delta = self.clip(arrival.update.delta[None])[0]
        clipped = dataclasses.replace(arrival, update=dataclasses.replace(arrival.update, delta=delta))
        return self.inner.receive(global_params, clipped)

    def refresh(self, local: torch.Tensor, fresh: torch.Tensor, gained: int) -> torch.Tensor:
        return self.inner.refresh(local, fresh, gained)

    def state_dict(self) -> dict[str, Any]:
        return {"inner": self.inner.state_dict(), **self.clip.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        self.clip.load_state_dict(state)


def with_aggregator(strategy: Strategy, config: AggregatorConfig) -> Strategy:
    """``strategy`` itself for the plain mean without clipping (bit-identical), otherwise wrapped.

    Raises
    ------
    ConfigError
        A cohort rule (median, trimmed mean, Krum) for an asynchronous strategy, which takes one
        update at a time.
    """
    if config.name == "mean" and config.clip_norm is None:
        return strategy
    if isinstance(strategy, AsyncStrategy):
        if config.name != "mean":
            raise ConfigError(f"aggregator.name={config.name} needs a cohort of updates; asynchronous strategy "
                              f"{strategy.name!r} takes one at a time: use aggregator.name=mean with clip_norm")
        return ClippedArrivals(strategy, config)
    return RobustAggregation(strategy, config)
