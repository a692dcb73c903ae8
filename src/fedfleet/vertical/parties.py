"""The two roles of a vertical federation and one training step between them.

A passive party computes its bottom model's embedding for a batch, sends it up the
channel, and later applies the gradient the active party sends down. The active party
computes its own embedding, runs the interaction layer and the top model on all
embeddings, takes the loss against its labels, updates its parts and returns the
gradient of the loss with respect to each passive embedding (through its ``protection``,
e.g. label-protecting noise, when set).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from fedfleet.vertical.attacks import Corruption
from fedfleet.vertical.model import SplitModel

if TYPE_CHECKING:
    from fedfleet.vertical.protocol import PassiveLink


def sgd(modules: Sequence[nn.Module], lr: float, momentum: float) -> torch.optim.SGD:
    """Plain SGD over the parameters of ``modules`` (each party builds its own)."""
    params = [p for module in modules for p in module.parameters()]
    return torch.optim.SGD(params, lr=lr, momentum=momentum)


class PassiveParty:
    """Holds features and a bottom model; optionally corrupts what it sends.

    Parameters
    ----------
    index : int
        Party number (1.. for passive parties), used in messages.
    bottom : nn.Module
        The party's bottom model.
    x : torch.Tensor
        Its aligned features, shape (samples, features).
    optimizer : torch.optim.Optimizer
        Over ``bottom``'s parameters.
    corruption : Corruption, optional
        Makes the party malicious: on a random fraction of batches it sends a corrupted
        embedding and skips its own update.
    generator : torch.Generator, optional
        Randomness of the corruption.
    """

    def __init__(
        self,
        index: int,
        bottom: nn.Module,
        x: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        corruption: Corruption | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.index = index
        self.bottom = bottom
        self.x = x
        self.optimizer = optimizer
        self.corruption = corruption
        self.generator = generator or torch.Generator().manual_seed(index)
        self.corrupted_batches = 0
        self.received: torch.Tensor | None = None
        self._embedding: torch.Tensor | None = None
        self._batch: torch.Tensor | None = None

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """The embedding to send for sample indices ``batch``, shape (batch, dim)."""
        self._batch = batch
        embedding = self.bottom(self.x[batch])
        if self.corruption is not None and self.corruption.strikes(self.generator):
            self.corrupted_batches += 1
            self._embedding = None
            return self.corruption.apply(embedding.detach(), self.generator)
        self._embedding = embedding
        return embedding.detach()

    def apply_gradient(self, grad: torch.Tensor) -> None:
        """Back-propagate the loss gradient w.r.t. the sent embedding and step.

        The gradient is also kept in ``received`` (samples, dim): the latest gradient the
        party received for each of its samples, i.e. its view of the labels' footprint.
        """
        if self.received is None:
            self.received = torch.zeros(len(self.x), grad.shape[1])
        if self._batch is not None:
            self.received[self._batch] = grad.detach().float()
        if self._embedding is None:  # a corrupted batch: nothing honest to update
            return
        self.optimizer.zero_grad()
        self._embedding.backward(grad)
        self.optimizer.step()
        self._embedding = None


class ActiveParty:
    """Holds labels, a bottom model, the interaction layer and the top model.

    Parameters
    ----------
    model : SplitModel
        The active party uses ``bottoms[0]``, ``interaction`` and ``top``.
    x : torch.Tensor
        Its aligned features, shape (samples, features).
    y : torch.Tensor
        Labels, shape (samples,).
    optimizer : torch.optim.Optimizer
        Over the active party's parameters.
    protection : callable, optional
        Applied to each batch of gradients before they are sent to a passive party
        (e.g. :class:`~fedfleet.vertical.protection.GradientNoise`).
    """

    def __init__(
        self, model: SplitModel, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
        protection: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.model = model
        self.x = x
        self.y = y
        self.optimizer = optimizer
        self.protection = protection

    def step(self, batch: torch.Tensor, z_passive: Sequence[torch.Tensor]) -> tuple[float, list[torch.Tensor]]:
        """One update on ``batch`` given the received passive embeddings.

        Returns
        -------
        loss : float
            The batch's mean cross-entropy.
        grads : list of torch.Tensor
            d loss / d embedding for each passive party, same shapes as ``z_passive``,
            with ``protection`` applied when set (the active party's own update uses the
            exact gradients).
        """
        received = [z.detach().requires_grad_(True) for z in z_passive]
        self.optimizer.zero_grad()
        z_active = self.model.bottoms[0](self.x[batch])
        logits = self.model.head(z_active, received)
        loss = nn.functional.cross_entropy(logits, self.y[batch])
        loss.backward()
        self.optimizer.step()
        grads = [z.grad if z.grad is not None else torch.zeros_like(z) for z in received]
        if self.protection is not None:
            grads = [self.protection(g) for g in grads]
        return float(loss.detach()), grads


def exchange_step(active: ActiveParty, links: Sequence[PassiveLink], batch: torch.Tensor) -> float:
    """One protocol round on ``batch``: batch rows down, embeddings up, active update, gradients down.

    The active party chooses the batch and sends each passive party its row positions (int64,
    little-endian) through that party's link, so they are counted like every other message.
    """
    received = [link.embedding(batch) for link in links]
    loss, grads = active.step(batch, received)
    for link, grad in zip(links, grads, strict=True):
        link.gradient(grad)
    return loss
