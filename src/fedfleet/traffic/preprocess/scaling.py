"""Step 3: normalisation statistics from column moments, which sites can share instead of flows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Scaling = Literal["standard", "minmax", "log-standard"]
SCALINGS: tuple[Scaling, ...] = ("standard", "minmax", "log-standard")


@dataclass(frozen=True)
class Moments:
    """Count, mean, sum of squared deviations (m2), min and max of a column's finite values.

    Moments of disjoint parts add up exactly (Chan et al.'s parallel update), so sites can
    share these instead of their flows.
    """

    count: int
    mean: float
    m2: float
    low: float
    high: float

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return cls(0, 0.0, 0.0, np.inf, -np.inf)
        mean = float(finite.mean())
        return cls(int(finite.size), mean, float(np.square(finite - mean).sum()),
                   float(finite.min()), float(finite.max()))

    @classmethod
    def count_of(cls, values: np.ndarray) -> Moments:
        """Only the number of finite values (no statistic of them): what a site shares for a
        column that is not normalised, so the server can tell an empty column."""
        return cls(int(np.isfinite(values).sum()), 0.0, 0.0, np.inf, -np.inf)

    def __add__(self, other: Moments) -> Moments:
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        return Moments(count, self.mean + delta * other.count / count,
                       self.m2 + other.m2 + delta * delta * self.count * other.count / count,
                       min(self.low, other.low), max(self.high, other.high))


def prescale(values: np.ndarray, scaling: Scaling) -> np.ndarray:
    """The transform applied before the statistics: sign(x) log(1 + |x|) for log-standard."""
    if scaling == "log-standard":
        return np.sign(values) * np.log1p(np.abs(values))
    return values


def statistics(moments: Moments, scaling: Scaling) -> tuple[float, float]:
    """Offset and scale such that output = (value - offset) / scale.

    A constant column (whose float moments may still show rounding noise), an empty one and
    one whose spread is below float64's normal range (m2 underflows to 0) get scale 1.
    """
    if moments.count == 0 or moments.low == moments.high:
        return (moments.low if moments.count else 0.0), 1.0
    if scaling == "minmax":
        offset, scale = moments.low, moments.high - moments.low
    else:
        offset, scale = moments.mean, float(np.sqrt(moments.m2 / moments.count))
    return offset, scale if scale > 0 and np.isfinite(scale) else 1.0
