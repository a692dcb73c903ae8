"""Traffic classifiers on preprocessed flows: gradient-boosted trees and a PyTorch MLP.

Both follow the scikit-learn classifier contract (``fit`` / ``predict`` /
``predict_proba`` / ``classes_``) and accept NaN for null characteristics: the trees split
on them natively, the MLP reads them as 0 (the training mean after standard scaling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import check_is_fitted
from torch import nn

from fedfleet.errors import ConfigError

ClassifierName = Literal["tree", "mlp"]
CLASSIFIERS: tuple[ClassifierName, ...] = ("tree", "mlp")
PREDICT_BATCH = 65536


def build_mlp(num_features: int, num_classes: int, hidden: Sequence[int] = (128, 64)) -> nn.Module:
    """A ReLU MLP: (N, num_features) float32 -> (N, num_classes) logits."""
    layers: list[nn.Module] = []
    width = num_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def as_tensor(X: np.ndarray) -> torch.Tensor:
    """Preprocessed flows as a float32 tensor with nulls (NaN) read as 0."""
    return torch.from_numpy(np.nan_to_num(np.asarray(X, dtype=np.float32), nan=0.0))


class MLPTrafficClassifier(ClassifierMixin, BaseEstimator):
    """A PyTorch MLP trained with Adam on cross-entropy.

    Parameters
    ----------
    hidden : sequence of int
        Widths of the hidden layers.
    epochs : int
        Passes over the training flows.
    batch_size : int
        Flows per optimisation step.
    lr : float
        Adam learning rate.
    weight_decay : float
        Adam L2 penalty.
    random_state : int
        Seed for the initial weights and the batch order.

    Attributes
    ----------
    classes_ : ndarray
        Class labels, index = output unit.
    module_ : torch.nn.Module
        The trained network, (N, n_features_in_) -> (N, n_classes) logits.
    n_features_in_ : int
        Width of the input.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (128, 64),
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        random_state: int = 0,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> MLPTrafficClassifier:
        """Train on preprocessed flows ``X`` (N, D) with labels ``y`` (N,)."""
        self.classes_, targets = np.unique(np.asarray(y), return_inverse=True)
        inputs = as_tensor(X)
        labels = torch.as_tensor(targets, dtype=torch.long)
        self.n_features_in_ = inputs.shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            self.module_ = build_mlp(self.n_features_in_, len(self.classes_), self.hidden)
            order = torch.Generator().manual_seed(self.random_state)
            optimiser = torch.optim.Adam(self.module_.parameters(), lr=self.lr,
                                         weight_decay=self.weight_decay)
            loss_fn = nn.CrossEntropyLoss()
            self.module_.train()
            for _ in range(self.epochs):
                for batch in torch.randperm(len(labels), generator=order).split(self.batch_size):
                    optimiser.zero_grad()
                    loss_fn(self.module_(inputs[batch]), labels[batch]).backward()
                    optimiser.step()
        self.module_.eval()
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, (N, n_classes)."""
        check_is_fitted(self, "module_")
        inputs = as_tensor(X)
        with torch.no_grad():
            parts = [torch.softmax(self.module_(chunk), dim=1) for chunk in inputs.split(PREDICT_BATCH)]
        return torch.cat(parts).numpy() if parts else np.empty((0, len(self.classes_)), np.float32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable class label per flow."""
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])


def build_classifier(name: str, random_state: int = 0, **params: Any) -> Any:
    """A fresh classifier by name: ``tree`` (HistGradientBoosting) or ``mlp``.

    Raises
    ------
    ConfigError
        For an unknown name or parameter.
    """
    if name == "tree":
        defaults: dict[str, Any] = {"max_iter": 100, "early_stopping": True}
        try:
            return HistGradientBoostingClassifier(random_state=random_state, **(defaults | params))
        except TypeError as exc:
            raise ConfigError(f"tree classifier: {exc}") from None
    if name == "mlp":
        try:
            return MLPTrafficClassifier(random_state=random_state, **params)
        except TypeError as exc:
            raise ConfigError(f"mlp classifier: {exc}") from None
    raise ConfigError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")
