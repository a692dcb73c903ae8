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
from fedfleet.vertical.model import SplitModel, build_split_model
from fedfleet.vertical.parties import ActiveParty, PassiveParty, exchange_step, sgd
from fedfleet.vertical.protection import GradientNoise
from fedfleet.vertical.protocol import PassiveLink, PassiveService, in_process_link

EpochCallback = Callable[[dict[str, Any]], None]


def batch_order(num_samples: int, batch_size: int, epochs: int, seed: int) -> Iterator[list[torch.Tensor]]:
    """The batches (sample indices) of each epoch: a fresh seeded permutation per epoch."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        yield list(torch.randperm(num_samples, generator=generator).split(batch_size))


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


@torch.no_grad()
def split_logits(model: SplitModel, x_active: torch.Tensor, links: Sequence[PassiveLink], split: str,
                 batch_size: int = 2048) -> torch.Tensor:
    """Split inference: logits (rows, classes) for the rows of ``split`` that every party holds.

    For each batch the active party sends the row positions down each link, each passive party
    sends its embedding of those rows up (counted in the link's ``eval_channel``), and the active
    party predicts from its own features ``x_active`` (rows, features) and the embeddings.
    Nothing goes back down: the predictions stay with the active party.
    """
    out = []
    for start in range(0, len(x_active), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(x_active)))
        z_passive = [link.embedding(rows, split, train=False) for link in links]
        out.append(model.head(model.bottoms[0](x_active[rows]), z_passive))
    return torch.cat(out)


def scores(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``logits`` (rows, classes) against labels ``y``."""
    accuracy = int((logits.argmax(1) == y).sum()) / len(y)
    return accuracy, float(nn.functional.cross_entropy(logits, y, reduction="sum")) / len(y)


def train_parties(
    active: ActiveParty, links: Sequence[PassiveLink], batch_size: int, epochs: int, seed: int,
    start_epoch: int = 0, evaluation: Callable[[], tuple[float, float]] | None = None,
    after_epoch: EpochCallback | None = None,
) -> list[dict[str, Any]]:
    """The training loop every transport shares: epochs ``start_epoch + 1 .. epochs`` of protocol rounds.

    Parameters
    ----------
    active : ActiveParty
        Drives the rounds; its labels fix the number of samples.
    links : sequence of PassiveLink
        One per passive party, all with the same training and evaluation channels.
    batch_size, epochs, seed : int
        The batches of :func:`batch_order`; epochs before ``start_epoch`` are skipped (resume).
    evaluation : callable, optional
        Returns (test accuracy, test loss) after each epoch, by split inference.
    after_epoch : callable, optional
        Called with each epoch's entry (progress, checkpoints).

    Returns
    -------
    list of dict
        Per epoch: epoch, train_loss, wall_time_s, bytes_up, bytes_down and, with an
        evaluation, test_accuracy, test_loss, bytes_eval_up and bytes_eval_down.
    """
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    channel, eval_channel = links[0].channel, links[0].eval_channel
    for epoch, batches in enumerate(batch_order(len(active.y), batch_size, epochs, seed)):
        if epoch < start_epoch:
            continue
        active.model.train()
        losses = [exchange_step(active, links, batch) for batch in batches]
        entry: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": sum(losses) / len(losses),
            "wall_time_s": time.perf_counter() - start,
            "bytes_up": channel.bytes_up,
            "bytes_down": channel.bytes_down,
        }
        if evaluation is not None:
            active.model.eval()
            entry["test_accuracy"], entry["test_loss"] = evaluation()
            entry["bytes_eval_up"], entry["bytes_eval_down"] = eval_channel.bytes_up, eval_channel.bytes_down
        history.append(entry)
        if after_epoch is not None:
            after_epoch(entry)
    active.model.eval()
    return history


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
        The training channel, with its byte counts.
    channel_eval_ : Channel
        Byte counts of split inference (evaluation, ``predict``, ``score``, ``passive_embeddings``).
    links_ : list of PassiveLink
        The active party's link to each passive party (in-process transport).
    services_ : list of PassiveService
        Each passive party's side of the protocol.
    history_ : list of dict
        Per epoch: epoch, train_loss, wall_time_s, bytes_up, bytes_down and, with an
        evaluation set, test_accuracy, test_loss, bytes_eval_up and bytes_eval_down.
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
        eval_channel = type(channel)()
        active = ActiveParty(
            model, xs[0], y,
            sgd([model.bottoms[0], model.interaction, model.top], self.lr, self.momentum),
            protection=GradientNoise(self.gradient_noise) if self.gradient_noise > 0 else None,
        )
        self.services_ = [
            PassiveService(index, {"train": xs[index], **({"eval": eval_set[0][index]} if eval_set else {})},
                           type(channel)(), party=PassiveParty(
                index, model.bottoms[index], xs[index],
                sgd([model.bottoms[index]], self.lr, self.momentum),
                corruption=self.corruption if index == self.corrupt_party else None,
                generator=torch.Generator().manual_seed(self.random_state + index),
            ))
            for index in range(1, len(xs))
        ]
        self.links_ = [in_process_link(service, channel, eval_channel, self.embedding_dim)
                       for service in self.services_]
        received: list[list[torch.Tensor]] = [[] for _ in self.services_]

        def keep_views(entry: dict[str, Any]) -> None:
            for views, service in zip(received, self.services_, strict=True):
                assert service.party is not None and service.party.received is not None
                views.append(service.party.received.clone())
            if on_epoch is not None:
                on_epoch(entry)

        evaluation = None
        if eval_set is not None:
            x_eval, y_eval = eval_set[0][0], eval_set[1]

            def evaluation() -> tuple[float, float]:
                return scores(split_logits(model, x_eval, self.links_, "eval"), y_eval)

        self.history_ = train_parties(active, self.links_, self.batch_size, self.epochs, self.random_state,
                                      evaluation=evaluation, after_epoch=keep_views)
        self.model_ = model
        self.channel_ = channel
        self.channel_eval_ = eval_channel
        self.certified_bound_ = model.passive_lipschitz_bound()
        self.corrupted_batches_ = sum(service.party.corrupted_batches for service in self.services_
                                      if service.party is not None)
        self.received_gradients_ = [torch.stack(views) for views in received]
        return self

    def passive_embeddings(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each passive party's embedding of aligned rows ``xs`` (active first), by split inference:
        row positions down and embeddings up, counted in ``channel_eval_``."""
        self._hand_out(xs)
        rows = torch.arange(len(xs[0]))
        return [link.embedding(rows, "predict", train=False) for link in self.links_]

    def predict_logits(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logits (samples, classes) by split inference (each passive party embeds its own columns
        of ``xs``; messages counted in ``channel_eval_``)."""
        self._hand_out(xs)
        return split_logits(self.model_, xs[0], self.links_, "predict")

    def _hand_out(self, xs: Sequence[torch.Tensor]) -> None:
        """Give each in-process passive party its columns of new rows, as its "predict" split."""
        if len(xs) != len(self.services_) + 1:
            raise ValueError(f"expected features of {len(self.services_) + 1} parties, got {len(xs)}")
        for service, x in zip(self.services_, xs[1:], strict=True):
            service.tables["predict"] = x

    def predict(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Predicted class per sample, shape (samples,), by split inference."""
        return self.predict_logits(xs).argmax(1)

    def score(self, xs: Sequence[torch.Tensor], y: torch.Tensor) -> float:
        """Accuracy on aligned party features ``xs`` and labels ``y``, by split inference."""
        return scores(self.predict_logits(xs), y)[0]


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
