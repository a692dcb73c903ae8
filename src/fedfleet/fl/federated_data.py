"""The data of a federation: one data set per client plus the server's test set."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from fedfleet.config import DataConfig
from fedfleet.data.datasets import ArrayDataset, load_dataset
from fedfleet.data.partition import build_partitioner, label_histograms
from fedfleet.errors import ConfigError
from fedfleet.seeding import EngineStream, derive_seed, stream


@dataclass(frozen=True)
class FederatedData:
    """Client data sets and a held-out test set.

    Attributes
    ----------
    clients : list of ArrayDataset
        One per client; a client's data never leaves it in a real deployment.
    test : ArrayDataset
        Where the server evaluates the global model.
    validation : ArrayDataset, optional
        Data the server holds to judge its own changes to the model (e.g. pruning), kept apart
        from ``test`` so the reported accuracy is not the one those changes were chosen by.
    """

    clients: list[ArrayDataset]
    test: ArrayDataset
    validation: ArrayDataset | None = None

    @property
    def num_classes(self) -> int:
        return self.test.num_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.test.input_shape

    def num_samples(self) -> np.ndarray:
        """(num_clients,) local data set sizes."""
        return np.array([len(c) for c in self.clients], dtype=np.int64)

    def with_validation(self, fraction: float, seed: int) -> FederatedData:
        """A copy whose ``validation`` is a random ``fraction`` of ``test`` and whose ``test`` is the rest.

        Raises
        ------
        ConfigError
            Either part would be empty.
        """
        held = round(len(self.test) * fraction)
        if not 0 < held < len(self.test):
            raise ConfigError(f"pruning.validation_fraction={fraction} leaves {held} of the {len(self.test)} test "
                              "samples for validation; choose a share that keeps both parts non-empty")
        order = stream(seed, EngineStream.VALIDATION).permutation(len(self.test))
        return replace(self, validation=self.test.subset(np.sort(order[:held])),
                       test=self.test.subset(np.sort(order[held:])))

    def label_histograms(self) -> np.ndarray:
        """(num_clients, num_classes) label counts."""
        labels = np.concatenate([c.y.numpy() for c in self.clients])
        bounds = np.cumsum([0, *self.num_samples()])
        parts = [np.arange(a, b) for a, b in itertools.pairwise(bounds)]
        return label_histograms(labels, parts, self.num_classes)


def build_federated_data(config: DataConfig, seed: int) -> FederatedData:
    """Load the configured data set and partition its training part over clients."""
    split = load_dataset(config.dataset, root=config.root)
    partitioner = build_partitioner(
        config.partition,
        config.num_clients,
        random_state=derive_seed(seed, EngineStream.PARTITION),
        alpha=config.alpha,
        shards_per_client=config.shards_per_client,
        quantity_sigma=config.quantity_sigma,
    ).fit(split.train.y.numpy())
    test = split.test
    if config.test_fraction < 1.0:
        kept = int(len(test) * config.test_fraction)
        if kept == 0:
            raise ConfigError(f"data.test_fraction={config.test_fraction} keeps none of the {len(test)} test "
                              f"samples; raise it to at least {1 / len(test):.2g}")
        keep = stream(seed, EngineStream.TEST_SUBSAMPLE).permutation(len(test))[:kept]
        test = test.subset(np.sort(keep))
    return FederatedData([split.train.subset(idx) for idx in partitioner.client_indices_], test)
