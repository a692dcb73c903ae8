"""Traffic classifiers on preprocessed flows: gradient-boosted trees and a PyTorch MLP.

Both follow the scikit-learn classifier contract (``fit`` / ``predict`` /
``predict_proba`` / ``classes_``) and accept NaN for null characteristics: the trees split
on them natively, the MLP reads them as 0 (the training mean after standard scaling).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from sklearn.utils.validation import check_is_fitted
from torch import nn

from fedfleet.errors import ConfigError

ClassifierName = Literal["tree", "mlp"]
CLASSIFIERS: tuple[ClassifierName, ...] = ("tree", "mlp")
PREDICT_BATCH = 65536
EARLY_STOPPING_AUTO_FLOWS = 10_000  # scikit-learn's early_stopping="auto" turns it on above this many flows
# Defaults of the tree that hold on CICFlowMeter, UNSW-NB15, Zeek and nfstream tables (docs/benchmarks.md):
# early stopping on the validation loss froze the trees after about a dozen iterations on CIC-IDS2017
# (its loss diverges on a few confidently wrong flows while accuracy still rises), and rare
# classes broke its stratified split; a fixed number of iterations with L2 shrinkage of the leaves does not.
TREE_DEFAULTS: dict[str, Any] = {"max_iter": 100, "l2_regularization": 1.0, "early_stopping": False}


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
    class_weight : "balanced", dict or None
        Weight of each class in the loss: ``"balanced"`` weighs classes inversely to their
        frequency, a dict maps labels to weights (others 1), None weighs all alike.
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

    _parameter_constraints: dict[str, list[Any]] = {  # noqa: RUF012 (scikit-learn's convention)
        "hidden": ["array-like"],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        hidden: Sequence[int] = (128, 64),
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        class_weight: str | dict[str, float] | None = None,
        random_state: int = 0,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.class_weight = class_weight
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
            weights = compute_class_weight(self.class_weight, classes=self.classes_, y=np.asarray(y))
            loss_fn = nn.CrossEntropyLoss(weight=torch.as_tensor(weights, dtype=torch.float32))
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


def fit_classifier(classifier: Any, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Fit ``classifier`` on (X, y); rare classes never break the tree's early stopping.

    With early stopping the tree validates on a held-out share of each class
    (``validation_fraction``, split here rather than by scikit-learn's stratified split,
    which fails on a class of one flow): a class too small to lend a flow to that share is
    trained on and not validated (when no class can, the tree stops on its training loss).
    Without a validation split, a class is too small to validate when it has a single flow
    (no held-out split can both train and test it). The tree's ``class_weight`` (by label)
    becomes per-flow weights of the training and validation flows.

    Returns
    -------
    dict
        ``too_small_to_validate`` (sorted labels), ``validation_flows`` and, for the tree,
        ``iterations``.
    """
    labels = np.asarray(y)
    classes, counts = np.unique(labels, return_counts=True)
    validation = _validation_index(classifier, labels)
    if validation is not None and not len(validation):  # no class can lend a flow: stop on the training loss
        classifier.set_params(validation_fraction=None)
        validation = None
    if not isinstance(classifier, HistGradientBoostingClassifier):
        classifier.fit(X, labels)
        return {"too_small_to_validate": [str(label) for label in classes[counts < 2]], "validation_flows": 0}
    # scikit-learn's tree reads class_weight keys as encoded class numbers; weigh the flows here by label
    class_weight = classifier.class_weight
    weights = None if class_weight is None else compute_sample_weight(class_weight, labels)
    classifier.set_params(class_weight=None)
    try:
        if validation is None:
            classifier.fit(X, labels, sample_weight=weights)
        else:
            train = np.setdiff1d(np.arange(len(labels)), validation)
            classifier.fit(X[train], labels[train], sample_weight=None if weights is None else weights[train],
                           X_val=X[validation], y_val=labels[validation],
                           sample_weight_val=None if weights is None else weights[validation])
    finally:
        classifier.set_params(class_weight=class_weight)
    too_small = classes[counts < 2] if validation is None else np.setdiff1d(classes, labels[validation])
    return {"too_small_to_validate": [str(label) for label in too_small],
            "validation_flows": 0 if validation is None else len(validation),
            "iterations": int(classifier.n_iter_)}


def _validation_index(classifier: Any, labels: np.ndarray) -> np.ndarray | None:
    """Flows held out for the tree's early stopping, ``validation_fraction`` of each class
    (rounded down, drawn with the classifier's seed); None without early stopping."""
    if not isinstance(classifier, HistGradientBoostingClassifier) or classifier.validation_fraction is None:
        return None
    stopping = classifier.early_stopping
    if stopping is False or (stopping == "auto" and len(labels) <= EARLY_STOPPING_AUTO_FLOWS):
        return None
    fraction = classifier.validation_fraction
    share = fraction / len(labels) if isinstance(fraction, Integral) else float(fraction)
    rng = np.random.default_rng(classifier.random_state if isinstance(classifier.random_state, int) else 0)
    held_out = [rng.permutation(np.flatnonzero(labels == label))[:int(count * share)]
                for label, count in zip(*np.unique(labels, return_counts=True), strict=True)]
    return np.sort(np.concatenate(held_out))


def build_classifier(name: str, random_state: int = 0, **params: Any) -> Any:
    """A fresh classifier by name: ``tree`` (HistGradientBoosting, :data:`TREE_DEFAULTS`) or ``mlp``.

    Parameters
    ----------
    name : {"tree", "mlp"}
        Which classifier.
    random_state : int
        Its seed.
    **params
        Its constructor parameters (override the defaults); checked against its own
        parameter constraints here, before any training.

    Raises
    ------
    ConfigError
        For an unknown name, an unknown parameter (the message lists the known ones) or a
        bad value.
    """
    if name not in CLASSIFIERS:
        raise ConfigError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")
    estimator = HistGradientBoostingClassifier if name == "tree" else MLPTrafficClassifier
    known = sorted(set(estimator().get_params()) - {"random_state"})
    unknown = [key for key in params if key not in known]
    if unknown:
        raise ConfigError(f"{name} classifier has no parameter {unknown[0]!r}; known: {', '.join(known)}")
    if name == "tree" and params.get("categorical_features", "from_dtype") not in ("from_dtype", None):
        raise ConfigError("tree classifier: categorical_features is not supported; nominal columns are "
                          "encoded by the preprocessor (list them under categorical in the --spec file)")
    for key, value in params.items():
        values = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else [value]
        if any(isinstance(item, float) and not np.isfinite(item) for item in values):
            raise ConfigError(f"{name} classifier: {key} must be finite, not {value!r}")
    defaults = TREE_DEFAULTS if name == "tree" else {}
    classifier = estimator(random_state=random_state, **(defaults | params))
    try:
        classifier._validate_params()
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{name} classifier: {exc}") from None
    if name == "mlp":
        hidden = tuple(classifier.hidden)
        if not hidden or not all(isinstance(width, int) and width >= 1 for width in hidden):
            raise ConfigError(f"mlp classifier: hidden must list positive layer widths, e.g. [128, 64]; got {hidden}")
        classifier.set_params(hidden=hidden)
    return classifier


def parse_classifier_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``["max_iter=300", "early_stopping=true"]`` as a dict with YAML-typed values.

    Raises
    ------
    ConfigError
        For an item that is not KEY=VALUE or a value that is not valid YAML.
    """
    import yaml

    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--classifier-param {pair!r} is not KEY=VALUE (e.g. max_iter=300)")
        try:
            params[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--classifier-param {pair!r}: the value is not a number, word or list") from None
    return params


def parse_class_weight(text: str | None) -> str | dict[str, float] | None:
    """``balanced``, ``none`` or ``LABEL=WEIGHT,LABEL=WEIGHT`` as a classifier's ``class_weight``.

    Raises
    ------
    ConfigError
        For another word, a missing ``=`` or a weight that is not a positive finite number.
    """
    if text is None or text.strip().lower() == "none":
        return None
    if text.strip().lower() == "balanced":
        return "balanced"
    weights: dict[str, float] = {}
    for item in text.split(","):
        label, sep, raw = item.rpartition("=")
        try:
            weight = float(raw)
        except ValueError:
            weight = float("nan")
        if not sep or not label.strip() or not np.isfinite(weight) or weight <= 0:
            raise ConfigError(f"--class-weight {text!r}: give balanced, none or LABEL=WEIGHT,... with positive "
                              f"weights (bad item {item!r})")
        weights[label.strip()] = weight
    return weights
