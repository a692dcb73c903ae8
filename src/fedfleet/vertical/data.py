"""Vertically partitioned data sets: each party holds some columns of the same samples.

- ``fashion_mnist``: the 28 image columns are split into strips (two parties: left half
  to the active party, right half to the passive one); each strip is flattened.
- ``digits``: scikit-learn's 8x8 digits as 64 tabular columns, split into groups.
- ``breast_cancer``: scikit-learn's 30-column Wisconsin breast-cancer table, split into
  groups; each party standardises its own columns with its own training statistics.

Every party gets sample IDs for its rows in its own random order, and passive parties may
hold only a fraction of the samples, so the parties must align on IDs before training.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from fedfleet.data.datasets import load_dataset
from fedfleet.errors import ConfigError
from fedfleet.vertical.alignment import Alignment, hash_align
from fedfleet.vertical.channel import Channel, SerializingChannel
from fedfleet.vertical.psi import psi_align

VERTICAL_DATASETS = ("fashion_mnist", "digits", "breast_cancer")


@dataclass(frozen=True)
class PartyTable:
    """One party's rows: sample IDs (its own order) and features, shape (rows, columns)."""

    ids: tuple[str, ...]
    x: torch.Tensor


@dataclass(frozen=True)
class VerticalSplit:
    """One split (train or test) as the parties hold it, active party first.

    ``labels`` belong to the active party and follow the rows of ``tables[0]``.
    """

    tables: tuple[PartyTable, ...]
    labels: torch.Tensor

    def align(
        self, salt: str, method: Literal["psi", "hash"] = "psi", channel: Channel | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor, Alignment]:
        """Align the parties on their IDs: (features per party, labels, alignment).

        ``method`` is "psi" (private set intersection) or "hash" (salted hashes, insecure);
        the messages go through ``channel`` (a new :class:`SerializingChannel` if omitted).
        """
        party_ids = [table.ids for table in self.tables]
        channel = channel or SerializingChannel()
        align = psi_align if method == "psi" else hash_align
        alignment = align(party_ids, salt, channel)
        xs = [table.x[torch.from_numpy(rows)] for table, rows in zip(self.tables, alignment.rows, strict=True)]
        return xs, self.labels[torch.from_numpy(alignment.rows[0])], alignment


@dataclass(frozen=True)
class VerticalData:
    """Train and test splits plus what describes them."""

    train: VerticalSplit
    test: VerticalSplit
    classes: tuple[str, ...]
    columns_per_party: tuple[int, ...]

    @property
    def feature_dims(self) -> tuple[int, ...]:
        """Number of features each party holds."""
        return tuple(table.x.shape[1] for table in self.train.tables)


def split_columns(total: int, num_parties: int, columns_per_party: Sequence[int] | None) -> list[int]:
    """Columns per party: as given (validated) or as even as possible, active party first."""
    if columns_per_party is None:
        if not 2 <= num_parties <= total:
            raise ConfigError(f"data.num_parties must be between 2 and {total}, got {num_parties}")
        return [len(part) for part in np.array_split(np.arange(total), num_parties)]
    counts = list(columns_per_party)
    if len(counts) != num_parties or sum(counts) != total or min(counts) < 1:
        raise ConfigError(
            f"data.columns_per_party {counts} must list {num_parties} positive counts summing "
            f"to {total} (the data set's columns)"
        )
    return counts


def _load_columns(dataset: str, root: str | None, seed: int) -> tuple[np.ndarray, ...]:
    """(train columns, train labels, test columns, test labels, column width, classes).

    Columns are the last axis; for images each column is a (28,) pixel strip.
    """
    if dataset == "fashion_mnist":
        split = load_dataset("fashion_mnist", root)
        # (N, 1, 28, 28) -> (N, 28 rows, 28 columns)
        return (split.train.x[:, 0].numpy(), split.train.y.numpy(), split.test.x[:, 0].numpy(),
                split.test.y.numpy(), np.array(split.train.classes))
    if dataset == "digits":
        split = load_dataset("digits")
        return (split.train.x.flatten(1)[:, None].numpy(), split.train.y.numpy(),
                split.test.x.flatten(1)[:, None].numpy(), split.test.y.numpy(),
                np.array(split.train.classes))
    if dataset == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        bunch = load_breast_cancer()
        order = np.random.default_rng(seed).permutation(len(bunch.target))
        n_test = len(order) // 4
        x = bunch.data.astype(np.float32)
        train, test = order[n_test:], order[:n_test]
        mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-8
        x = (x - mean) / std  # per column, so each party can do it on its own columns
        return (x[train][:, None], bunch.target[train], x[test][:, None], bunch.target[test],
                np.array(bunch.target_names))
    raise ConfigError(f"unknown vertical data set {dataset!r}; choose one of: {', '.join(VERTICAL_DATASETS)}")


def _party_split(
    columns: np.ndarray, labels: np.ndarray, bounds: list[int], prefix: str,
    overlap: float, rng: np.random.Generator,
) -> VerticalSplit:
    ids = np.array([f"{prefix}-{i:06d}" for i in range(len(labels))])
    spans = list(itertools.pairwise(bounds))
    passive_rows = max(1, round(overlap * len(labels)))
    # each party's own row order and coverage; the active party holds every sample
    party_rows = [rng.permutation(len(labels))[: len(labels) if party == 0 else passive_rows]
                  for party in range(len(spans))]
    tables = tuple(
        PartyTable(
            ids=tuple(ids[rows]),
            x=torch.from_numpy(np.ascontiguousarray(columns[rows, :, start:stop]).reshape(len(rows), -1)).float(),
        )
        for rows, (start, stop) in zip(party_rows, spans, strict=True)
    )
    return VerticalSplit(tables=tables, labels=torch.from_numpy(labels[party_rows[0]].astype(np.int64)))


def load_vertical(
    dataset: str,
    num_parties: int = 2,
    columns_per_party: Sequence[int] | None = None,
    overlap: float = 1.0,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
    root: str | None = None,
) -> VerticalData:
    """Load ``dataset`` split by columns over ``num_parties`` parties.

    Parameters
    ----------
    dataset : {"fashion_mnist", "digits", "breast_cancer"}
        Which data set.
    num_parties : int
        Parties including the active one (>= 2).
    columns_per_party : sequence of int, optional
        Columns for each party (image columns for Fashion-MNIST); even split when omitted.
    overlap : float
        Fraction of the samples each passive party holds (the active party holds all).
    max_train, max_test : int, optional
        Keep a random subset of this many samples (for quick runs).
    seed : int
        Seeds subsampling, row orders and coverage.
    root : str, optional
        Folder with Fashion-MNIST's files.

    Returns
    -------
    VerticalData
        Unaligned party tables for train and test.
    """
    if not 0 < overlap <= 1:
        raise ConfigError(f"data.overlap must be in (0, 1], got {overlap}")
    x_train, y_train, x_test, y_test, classes = _load_columns(dataset, root, seed)
    counts = split_columns(x_train.shape[2], num_parties, columns_per_party)
    bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
    rng = np.random.default_rng(seed)
    if max_train is not None and max_train < len(y_train):
        keep = rng.permutation(len(y_train))[:max_train]
        x_train, y_train = x_train[keep], y_train[keep]
    if max_test is not None and max_test < len(y_test):
        keep = rng.permutation(len(y_test))[:max_test]
        x_test, y_test = x_test[keep], y_test[keep]
    return VerticalData(
        train=_party_split(x_train, y_train, bounds, "train", overlap, rng),
        test=_party_split(x_test, y_test, bounds, "test", overlap, rng),
        classes=tuple(str(c) for c in classes),
        columns_per_party=tuple(counts),
    )
