"""Small supervised training loop for the recognition models (Adam, mini-batches, seeded)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fedfleet.data.datasets import ArrayDataset
from fedfleet.models import build_model
from fedfleet.privacy.seeding import Stream, derive_seed

BatchTransform = Callable[[torch.Tensor], torch.Tensor]


def train_classifier(
    data: ArrayDataset,
    model_name: str = "cnn",
    *,
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 1e-3,
    transform: BatchTransform | None = None,
    seed: int = 0,
) -> nn.Module:
    """Build ``model_name`` and train it with Adam on ``data``.

    Parameters
    ----------
    data : ArrayDataset
        Training images (N, C, H, W) and labels.
    model_name : str
        A name known to :func:`fedfleet.models.build_model`.
    epochs, batch_size, lr : int, int, float
        Optimisation settings.
    transform : callable, optional
        Applied to every image batch before the forward pass (e.g. encryption with a
        mask drawn per image, or occlusion).
    seed : int
        Seeds the initial weights and the batch order (two independent streams of it).

    Returns
    -------
    nn.Module
        The trained model in eval mode.
    """
    with torch.random.fork_rng():
        torch.manual_seed(derive_seed(seed, Stream.MODEL_INIT))
        model = build_model(model_name, data.input_shape, data.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    order_rng = torch.Generator().manual_seed(derive_seed(seed, Stream.BATCH_ORDER))
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(data), generator=order_rng).split(batch_size):
            images = data.x[batch]
            if transform is not None:
                images = transform(images)
            loss = loss_fn(model(images), data.y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def predict_proba(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Class probabilities (N, K) of ``model`` on ``images``."""
    model.eval()
    parts = [torch.softmax(model(chunk), dim=1) for chunk in images.split(batch_size)]
    return torch.cat(parts)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``images`` whose top class equals ``labels``."""
    return float((predict_proba(model, images).argmax(dim=1) == labels).double().mean())


def true_class_confidence(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean probability the model gives to each image's true class."""
    probs = predict_proba(model, images)
    return float(probs.gather(1, labels[:, None]).double().mean())
