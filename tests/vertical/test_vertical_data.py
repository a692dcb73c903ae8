"""Vertical data sets: columns per party, image halves, partial overlap, validation."""

from __future__ import annotations

import pytest
import torch

from fedfleet.data.datasets import find_fashion_mnist, load_dataset
from fedfleet.errors import ConfigError
from fedfleet.vertical.data import load_vertical, split_columns


def test_even_and_explicit_column_splits() -> None:
    assert split_columns(64, 3, None) == [22, 21, 21]
    assert split_columns(30, 2, [10, 20]) == [10, 20]
    with pytest.raises(ConfigError, match="summing to 30"):
        split_columns(30, 2, [10, 10])
    with pytest.raises(ConfigError, match="between 2 and 8"):
        split_columns(8, 9, None)


def test_digits_columns_reassemble_the_table() -> None:
    data = load_vertical("digits", num_parties=3, columns_per_party=[10, 20, 34])
    xs, y, alignment = data.train.align("salt")
    assert [x.shape[1] for x in xs] == [10, 20, 34] == list(data.feature_dims)
    full = load_dataset("digits").train
    index = {tuple(row.tolist()): label for row, label in zip(full.x.flatten(1), full.y, strict=True)}
    joined = torch.cat(xs, dim=1)
    assert all(index[tuple(row.tolist())] == label for row, label in zip(joined[:50], y[:50], strict=True))
    assert alignment.overlap == len(full)


def test_partial_overlap_shrinks_the_aligned_set() -> None:
    data = load_vertical("breast_cancer", num_parties=2, overlap=0.5)
    active, passive = data.train.tables
    _, y, alignment = data.train.align("salt")
    assert len(passive.ids) == round(0.5 * len(active.ids)) == alignment.overlap == len(y)
    assert alignment.summary()["party_unmatched"] == [len(active.ids) - len(y), 0]


def test_breast_cancer_is_standardised_per_column() -> None:
    data = load_vertical("breast_cancer", num_parties=3)
    x = torch.cat(data.train.align("salt")[0], dim=1)
    assert x.shape[1] == 30
    torch.testing.assert_close(x.mean(0), torch.zeros(30), atol=1e-4, rtol=0)


@pytest.mark.skipif(find_fashion_mnist() is None, reason="Fashion-MNIST is not installed")
def test_fashion_mnist_halves_are_the_left_and_right_image_columns() -> None:
    data = load_vertical("fashion_mnist", max_train=50, max_test=20)
    (left, right), y, _ = data.train.align("salt")
    assert left.shape == right.shape == (50, 28 * 14)
    image = torch.cat([left.view(-1, 28, 14), right.view(-1, 28, 14)], dim=2)
    full = load_dataset("fashion_mnist").train
    matches = (full.x[:, 0].flatten(1) == image[0].flatten()).all(dim=1).nonzero()
    assert len(matches) >= 1 and int(full.y[matches[0, 0]]) == int(y[0])


def test_bad_overlap_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="overlap"):
        load_vertical("digits", overlap=0.0)
