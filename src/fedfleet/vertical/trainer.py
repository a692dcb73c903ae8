"""Training a split model across parties, and the unsplit reference it must match.

:class:`VerticalClassifier` follows the scikit-learn estimator contract: ``fit`` trains
the parties over a channel and returns self; learned attributes end in ``_``.
:func:`fit_unsplit` trains the same architecture as one module on the concatenated
features with the same seed and batch order; with honest parties the two give the same
parameters (the parity test).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import torch
from sklearn.base import BaseEstimator
from torch import nn

from fedfleet.vertical.attacks import Corruption
from fedfleet.vertical.channel import Channel, IdentityChannel, SerializingChannel
from fedfleet.vertical.model import SplitModel
from fedfleet.vertical.parties import ActiveParty, PassiveParty, exchange_step, sgd
from fedfleet.vertical.protection import GradientNoise

EpochCallback = Callable[[dict[str, Any]], None]


def batch_order(num_samples: int, batch_size: int, epochs: int, seed: int) -> Iterator[list[torch.Tensor]]:
    """The batches (sample indices) of each epoch: a fresh seeded permutation per epoch."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        yield list(torch.randperm(num_samples, generator=generator).split(batch_size))


def build_split_model(feature_dims: Sequence[int], num_classes: int, seed: int, **sizes: Any) -> SplitModel:
    """A :class:`SplitModel` initialised from ``seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SplitModel(feature_dims, num_classes, **sizes)


Predictor = Callable[[Sequence[torch.Tensor]], torch.Tensor]


@torch.no_grad()
def evaluate(
    model: Predictor, xs: Sequence[torch.Tensor], y: torch.Tensor, batch_size: int = 2048
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` (party features -> logits) on ``xs``."""
    correct, loss = 0, 0.0
    for start in range(0, len(y), batch_size):
        logits = model([x[start : start + batch_size] for x in xs])
        target = y[start : start + batch_size]
        correct += int((logits.argmax(1) == target).sum())
        loss += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
    return correct / len(y), loss / len(y)


class VerticalClassifier(BaseEstimator):
    """A classifier trained by an active party (labels) and passive parties (features).

    Parameters
    ----------
    embedding_dim, bottom_hidden, interaction_dim, top_hidden, top_depth : int
        Model sizes (see :class:`~fedfleet.vertical.model.SplitModel`).
    lipschitz : float or None
        The top model's certified bound ``L``; None for an unconstrained top.
    epochs, batch_size : int
        Passes over the aligned training set and samples per protocol round.
    lr, momentum : float
        SGD settings, the same for every party.
    channel : {"serializing", "identity"}
        How tensors travel between parties.
    corruption : Corruption, optional
        Makes passive party ``corrupt_party`` send corrupted embeddings during training.
    corrupt_party : int
        Which passive party (1-based) is malicious when ``corruption`` is set.
    embedding_clip : float or None
        Largest L2 norm of a passive embedding the active party uses (see
        :class:`~fedfleet.vertical.model.SplitModel`); None for no clipping.
    gradient_noise : float
        Label protection: the active party adds Gaussian noise of this many times the
        batch's RMS gradient norm to the gradients it sends down
        (:class:`~fedfleet.vertical.protection.GradientNoise`); 0 for none.
    random_state : int
        Seeds initialisation, batch order and the corruption draws.

    Attributes
    ----------
    model_ : SplitModel
        The trained sub-models of all parties.
    channel_ : Channel
        The channel used, with its byte counts.
    history_ : list of dict
        Per epoch: epoch, train_loss, wall_time_s, bytes_up, bytes_down and, with an
        evaluation set, test_accuracy and test_loss.
    certified_bound_ : float
        Certified Lipschitz constant of the logits in the passive embeddings.
    corrupted_batches_ : int
        Batches on which the malicious party sent corrupted embeddings.
    received_gradients_ : list of torch.Tensor
        Per passive party, the gradients it received, shape (epochs, samples, dim): its
        whole view of the labels (see :mod:`fedfleet.vertical.leakage`).
    """

    def __init__(
        self,
        embedding_dim: int = 16,
        bottom_hidden: int = 64,
        interaction_dim: int = 32,
        top_hidden: int = 32,
        top_depth: int = 1,
        lipschitz: float | None = 1.0,
        epochs: int = 5,
        batch_size: int = 64,
        lr: float = 0.05,
        momentum: float = 0.9,
        channel: Literal["serializing", "identity"] = "serializing",
        corruption: Corruption | None = None,
        corrupt_party: int = 1,
        embedding_clip: float | None = None,
        gradient_noise: float = 0.0,
        random_state: int = 0,
    ) -> None:
        self.embedding_dim = embedding_dim
        self.bottom_hidden = bottom_hidden
        self.interaction_dim = interaction_dim
        self.top_hidden = top_hidden
        self.top_depth = top_depth
        self.lipschitz = lipschitz
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.channel = channel
        self.corruption = corruption
        self.corrupt_party = corrupt_party
        self.embedding_clip = embedding_clip
        self.gradient_noise = gradient_noise
        self.random_state = random_state

    def model_sizes(self) -> dict[str, Any]:
        """Keyword arguments for :class:`SplitModel` from this estimator's parameters."""
        return {
            "embedding_dim": self.embedding_dim,
            "bottom_hidden": self.bottom_hidden,
            "interaction_dim": self.interaction_dim,
            "top_hidden": self.top_hidden,
            "top_depth": self.top_depth,
            "lipschitz": self.lipschitz,
            "embedding_clip": self.embedding_clip,
        }

    def fit(
        self,
        xs: Sequence[torch.Tensor],
        y: torch.Tensor,
        num_classes: int | None = None,
        eval_set: tuple[Sequence[torch.Tensor], torch.Tensor] | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> VerticalClassifier:
        """Train on aligned party features ``xs`` (active first) and labels ``y``.

        Parameters
        ----------
        xs : sequence of torch.Tensor
            Each party's features, shape (samples, features_k), rows aligned.
        y : torch.Tensor
            int64 labels, shape (samples,), held by the active party.
        num_classes : int, optional
            Defaults to ``max(y) + 1``.
        eval_set : (xs, y), optional
            Evaluated after every epoch into ``history_``.
        on_epoch : callable, optional
            Called with each epoch's history entry (e.g. to print progress).
        """
        if not 1 <= self.corrupt_party < len(xs):
            raise ValueError(f"corrupt_party must name a passive party 1..{len(xs) - 1}")
        num_classes = num_classes or int(y.max()) + 1
        model = build_split_model([x.shape[1] for x in xs], num_classes, self.random_state, **self.model_sizes())
        channel: Channel = SerializingChannel() if self.channel == "serializing" else IdentityChannel()
        active = ActiveParty(
            model, xs[0], y,
            sgd([model.bottoms[0], model.interaction, model.top], self.lr, self.momentum),
            protection=GradientNoise(self.gradient_noise) if self.gradient_noise > 0 else None,
        )
        passives = [
            PassiveParty(
                index, model.bottoms[index], xs[index],
                sgd([model.bottoms[index]], self.lr, self.momentum),
                corruption=self.corruption if index == self.corrupt_party else None,
                generator=torch.Generator().manual_seed(self.random_state + index),
            )
            for index in range(1, len(xs))
        ]
        self.history_: list[dict[str, Any]] = []
        received: list[list[torch.Tensor]] = [[] for _ in passives]
        start = time.perf_counter()
        for epoch, batches in enumerate(batch_order(len(y), self.batch_size, self.epochs, self.random_state)):
            model.train()
            losses = [exchange_step(active, passives, batch, channel, self.embedding_dim) for batch in batches]
            for views, party in zip(received, passives, strict=True):
                assert party.received is not None
                views.append(party.received.clone())
            entry: dict[str, Any] = {
                "epoch": epoch + 1,
                "train_loss": sum(losses) / len(losses),
                "wall_time_s": time.perf_counter() - start,
                "bytes_up": channel.bytes_up,
                "bytes_down": channel.bytes_down,
            }
            if eval_set is not None:
                model.eval()
                entry["test_accuracy"], entry["test_loss"] = evaluate(model, *eval_set)
            self.history_.append(entry)
            if on_epoch is not None:
                on_epoch(entry)
        model.eval()
        self.model_ = model
        self.channel_ = channel
        self.certified_bound_ = model.passive_lipschitz_bound()
        self.corrupted_batches_ = sum(party.corrupted_batches for party in passives)
        self.received_gradients_ = [torch.stack(views) for views in received]
        return self

    def predict(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Predicted class per sample, shape (samples,)."""
        with torch.no_grad():
            return self.model_(list(xs)).argmax(1)

    def score(self, xs: Sequence[torch.Tensor], y: torch.Tensor) -> float:
        """Accuracy on aligned party features ``xs`` and labels ``y``."""
        return evaluate(self.model_, xs, y)[0]


def fit_unsplit(
    estimator: VerticalClassifier, x: torch.Tensor, y: torch.Tensor, feature_dims: Sequence[int],
    num_classes: int | None = None,
) -> SplitModel:
    """Train ``estimator``'s architecture as one module on concatenated features ``x``.

    Same initialisation, batch order, loss and optimiser settings as
    :meth:`VerticalClassifier.fit`, but one optimiser and one backward pass through the
    whole network; the reference for the parity test.
    """
    num_classes = num_classes or int(y.max()) + 1
    model = build_split_model(feature_dims, num_classes, estimator.random_state, **estimator.model_sizes())
    optimizer = sgd([model], estimator.lr, estimator.momentum)
    model.train()
    for batches in batch_order(len(y), estimator.batch_size, estimator.epochs, estimator.random_state):
        for batch in batches:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model.forward_concatenated(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()
    return model
