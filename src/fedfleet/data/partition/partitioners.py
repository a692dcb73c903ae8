"""Horizontal partitioners with the scikit-learn estimator contract.

``Partitioner(num_clients, ..., random_state).fit(labels)`` learns ``client_indices_``: a
list with one int64 index array per client. Every sample is assigned to exactly one client.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from fedfleet.errors import ConfigError
from fedfleet.registry import Registry


class Partitioner(ABC):
    """Base class: split sample indices over ``num_clients`` clients.

    Parameters
    ----------
    num_clients : int
        Number of clients to create.
    random_state : int
        Seed; the same seed and labels give the same partition.
    """

    def __init__(self, num_clients: int, random_state: int = 0) -> None:
        self.num_clients = num_clients
        self.random_state = random_state

    def fit(self, labels: np.ndarray) -> Partitioner:
        """Learn ``client_indices_`` for ``labels`` (shape (N,), integer classes)."""
        labels = np.asarray(labels)
        if self.num_clients < 1:
            raise ConfigError(f"data.num_clients must be at least 1, got {self.num_clients}")
        if len(labels) < self.num_clients:
            raise ConfigError(
                f"data.num_clients ({self.num_clients}) exceeds the {len(labels)} samples available"
            )
        rng = np.random.default_rng(self.random_state)
        parts = self._split(labels, rng)
        self.client_indices_ = [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
        return self

    @abstractmethod
    def _split(self, labels: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """One index array per client; together they cover every sample once."""


def _ensure_nonempty(parts: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Move single samples from the largest clients to empty ones, so every client can train."""
    parts = [np.asarray(p, dtype=np.int64) for p in parts]
    for empty in [i for i, p in enumerate(parts) if len(p) == 0]:
        donor = int(np.argmax([len(p) for p in parts]))
        take = int(rng.integers(len(parts[donor])))
        parts[empty] = parts[donor][take : take + 1]
        parts[donor] = np.delete(parts[donor], take)
    return parts


class IidPartitioner(Partitioner):
    """Shuffle, then deal samples into equal-sized clients (sizes differ by at most one)."""

    def _split(self, labels: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        return list(np.array_split(rng.permutation(len(labels)), self.num_clients))


class DirichletPartitioner(Partitioner):
    """Label skew: each class is spread over clients by proportions drawn from Dir(alpha).

    Smaller ``alpha`` gives more skew (Hsu et al., 2019).
    """

    def __init__(self, num_clients: int, alpha: float = 0.5, random_state: int = 0) -> None:
        super().__init__(num_clients, random_state)
        self.alpha = alpha

    def _split(self, labels: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        if self.alpha <= 0:
            raise ConfigError(f"data.alpha must be positive, got {self.alpha}")
        buckets: list[list[np.ndarray]] = [[] for _ in range(self.num_clients)]
        for cls in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == cls))
            shares = rng.dirichlet(np.full(self.num_clients, self.alpha))
            cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
            for client, chunk in enumerate(np.split(members, cuts)):
                buckets[client].append(chunk)
        parts = [np.concatenate(b) if b else np.empty(0, np.int64) for b in buckets]
        return _ensure_nonempty(parts, rng)


class ShardPartitioner(Partitioner):
    """Pathological skew (McMahan et al., 2017): sort by label, cut into shards, deal
    ``shards_per_client`` shards to each client, so most clients see that many classes."""

    def __init__(self, num_clients: int, shards_per_client: int = 2, random_state: int = 0) -> None:
        super().__init__(num_clients, random_state)
        self.shards_per_client = shards_per_client

    def _split(self, labels: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        num_shards = self.num_clients * self.shards_per_client
        if num_shards > len(labels):
            raise ConfigError(
                f"data.num_clients x data.shards_per_client ({num_shards}) exceeds the "
                f"{len(labels)} samples; lower one of them"
            )
        by_label = np.argsort(labels, kind="stable")
        shards = np.array_split(by_label, num_shards)
        order = rng.permutation(num_shards).reshape(self.num_clients, self.shards_per_client)
        return [np.concatenate([shards[s] for s in row]) for row in order]


class QuantityPartitioner(Partitioner):
    """Quantity skew: client sizes log-normal with ``sigma``; labels IID within a client."""

    def __init__(self, num_clients: int, sigma: float = 1.0, random_state: int = 0) -> None:
        super().__init__(num_clients, random_state)
        self.sigma = sigma

    def _split(self, labels: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        # log-normal weights, scaled in log space so the largest is 1: exp() cannot overflow to inf
        # (and shares to NaN) for a large sigma
        log_weights = rng.normal(loc=0.0, scale=self.sigma, size=self.num_clients)
        weights = np.exp(log_weights - log_weights.max())
        spare = len(labels) - self.num_clients  # every client gets one sample first
        sizes = 1 + np.floor(weights / weights.sum() * spare).astype(int)
        sizes[: len(labels) - sizes.sum()] += 1  # hand out the rounding remainder
        cuts = np.cumsum(sizes)[:-1]
        return list(np.split(rng.permutation(len(labels)), cuts))


PARTITIONERS: Registry[Partitioner] = Registry("partition")
PARTITIONERS.register("iid")(IidPartitioner)
PARTITIONERS.register("dirichlet")(DirichletPartitioner)
PARTITIONERS.register("shards")(ShardPartitioner)
PARTITIONERS.register("quantity")(QuantityPartitioner)


def build_partitioner(
    name: str,
    num_clients: int,
    random_state: int = 0,
    alpha: float = 0.5,
    shards_per_client: int = 2,
    quantity_sigma: float = 1.0,
) -> Partitioner:
    """Build a partitioner by name with only the parameters it takes."""
    extra: dict[str, dict[str, float | int]] = {
        "iid": {},
        "dirichlet": {"alpha": alpha},
        "shards": {"shards_per_client": shards_per_client},
        "quantity": {"sigma": quantity_sigma},
    }
    builder = PARTITIONERS.get(name)
    return builder(num_clients, random_state=random_state, **extra[name])
