"""Small models by name: ``build_model("cnn", input_shape=(1, 28, 28), num_classes=10)``."""

from __future__ import annotations

import math

from torch import nn

from fedfleet.registry import Registry

MODELS: Registry[nn.Module] = Registry("model")


@MODELS.register("mlp")
def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: int = 200) -> nn.Module:
    """Two hidden layers of ``hidden`` units (the FedAvg paper's 2NN)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


@MODELS.register("cnn")
def cnn(input_shape: tuple[int, ...], num_classes: int, width: int = 16) -> nn.Module:
    """Two 3x3 conv blocks (width, 2*width channels; each ReLU + 2x2 max-pool) and two linear layers."""
    channels, height, breadth = input_shape
    flat = 2 * width * (height // 4) * (breadth // 4)  # two 2x2 pools
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


@MODELS.register("lenet5")
def lenet5(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """LeNet-5 (LeCun et al. 1998) with ReLU; 5x5 convs padded to keep small inputs valid."""
    channels, height, breadth = input_shape
    flat = 16 * (height // 4) * (breadth // 4)
    return nn.Sequential(
        nn.Conv2d(channels, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, **kwargs: object) -> nn.Module:
    """Build a registered model for inputs of ``input_shape`` (without the batch axis)."""
    return MODELS.build(name, tuple(input_shape), num_classes, **kwargs)


__all__ = ["MODELS", "build_model"]
