"""The one small training loop of the privacy module (Adam, seeded mini-batches): recognition models,
the attackers' inverse networks and decoders, the learned inpainter."""

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
    loss_fn = nn.CrossEntropyLoss()

    def batch_loss(batch: torch.Tensor) -> torch.Tensor:
        images = data.x[batch]
        if transform is not None:
            images = transform(images)
        return loss_fn(model(images), data.y[batch])

    order = torch.Generator().manual_seed(derive_seed(seed, Stream.BATCH_ORDER))
    return fit_minibatches(model, len(data), batch_loss, epochs=epochs, batch_size=batch_size, lr=lr, order=order)


def fit_minibatches(
    model: nn.Module,
    count: int,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    order: torch.Generator,
    before_epoch: Callable[[], None] | None = None,
) -> nn.Module:
    """Train ``model`` with Adam: each epoch, ``count`` samples in an order drawn from ``order``.

    Parameters
    ----------
    model : nn.Module
    count : int
        Samples per epoch; ``batch_loss`` receives each batch's indices (a shuffled split of
        ``range(count)``) and returns the loss to minimise.
    epochs, batch_size, lr :
        Optimisation settings.
    order : torch.Generator
        Draws each epoch's permutation (``batch_loss`` may draw from it too).
    before_epoch : callable, optional
        Called at the start of every epoch (e.g. to encrypt the data afresh).

    Returns
    -------
    nn.Module
        ``model``, trained, in eval mode.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        if before_epoch is not None:
            before_epoch()
        for batch in torch.randperm(count, generator=order).split(batch_size):
            loss = batch_loss(batch)
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
