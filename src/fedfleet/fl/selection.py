"""Client selection: which available devices train in a round."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Selector(Protocol):
    """Chooses up to ``k`` of the ``available`` client ids for a round."""

    def select(self, round_index: int, available: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """The chosen ids (a subset of ``available``)."""
        ...


class RandomSelector:
    """Uniformly random without replacement (FedAvg's default)."""

    def select(self, round_index: int, available: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        return np.sort(rng.choice(available, size=min(k, len(available)), replace=False))
