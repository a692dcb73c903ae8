"""The simulation-speed workload, defined once for every runner: the models, the data file, plain local SGD.

Needs only PyTorch and NumPy, so the Flower runner (in its own environment, without fedfleet) imports
it too. The data file is an ``.npz`` written by ``benchmarks/simulation_speed.py``: the Fashion-MNIST
training images and labels ordered client by client (``offsets`` marks where each client starts), the
cohort of every round, and the test set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROUNDS, PER_ROUND, BATCH_SIZE, LR, EPOCHS = 20, 10, 32, 0.05, 1


def mlp() -> nn.Module:
    """784-200-10, the issue's MLP."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 10))


def cnn() -> nn.Module:
    """Two 5x5 conv layers (16, 32 channels) with 2x2 max-pooling, then 128 hidden units."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, 10),
    )


MODELS = {"mlp": mlp, "cnn": cnn}


def initial_model(name: str) -> nn.Module:
    """The same initial weights for every runner."""
    torch.manual_seed(0)
    return MODELS[name]()


@dataclass
class Workload:
    x: torch.Tensor  # (N, 1, 28, 28) float32, client by client
    y: torch.Tensor  # (N,) int64
    offsets: np.ndarray  # (clients + 1,) client c holds rows offsets[c]:offsets[c + 1]
    cohorts: np.ndarray  # (rounds, per_round) client ids
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def num_clients(self) -> int:
        return len(self.offsets) - 1

    def client(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start, stop = int(self.offsets[index]), int(self.offsets[index + 1])
        return self.x[start:stop], self.y[start:stop]


def save(path: Path, x: np.ndarray, y: np.ndarray, offsets: np.ndarray, cohorts: np.ndarray,
         test_x: np.ndarray, test_y: np.ndarray) -> None:
    np.savez(path, x=x, y=y, offsets=offsets, cohorts=cohorts, test_x=test_x, test_y=test_y)


def load(path: str | Path) -> Workload:
    with np.load(path, allow_pickle=False) as arrays:
        return Workload(torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"]), arrays["offsets"],
                        arrays["cohorts"], torch.from_numpy(arrays["test_x"]), torch.from_numpy(arrays["test_y"]))


def local_sgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> None:
    """``EPOCHS`` of plain SGD over shuffled batches of ``BATCH_SIZE``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(x), generator=generator).split(BATCH_SIZE):
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(1000), y.split(1000), strict=True))
    return correct / len(y)
