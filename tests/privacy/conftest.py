"""Fixtures for the image-privacy tests: 8x8 digits and seeded random images."""

import numpy as np
import pytest
import torch

from fedfleet.data.datasets import DataSplit, load_dataset


@pytest.fixture(scope="session")
def digits() -> DataSplit:
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digit_images(digits: DataSplit) -> torch.Tensor:
    return digits.train.x[:200]


def uniform_images(n: int, shape: tuple[int, int, int] = (1, 8, 8), seed: int = 0) -> torch.Tensor:
    """``n`` images of ``shape`` with pixels uniform in [0, 1)."""
    return torch.from_numpy(np.random.default_rng(seed).random((n, *shape)).astype(np.float32))


@pytest.fixture
def make_images():
    return uniform_images
