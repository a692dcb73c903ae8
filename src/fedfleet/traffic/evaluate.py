"""Splits of a flow table and the metrics reported for a traffic classifier."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from fedfleet.errors import ConfigError, DataError
from fedfleet.traffic.schema import CAPTURE_COLUMN

if TYPE_CHECKING:
    from fedfleet.traffic.model import TrafficModel

SPLITS = ("random", "capture")  # a random flow split; a split by capture file (unseen captures)


def random_split(
    flows: pd.DataFrame, label: str, test_size: float = 0.25, random_state: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flows split at random, stratified by ``label``; a class of a single flow is kept on
    the training side (it cannot be on both), and the split is not stratified when the test
    side is too small to hold every class."""
    single = flows[label].map(flows[label].value_counts()) < 2
    common = flows[~single]
    if len(common) < 2:
        raise DataError(f"a random split needs a class with at least two flows; every class of {label!r} has one")
    try:
        train, test = train_test_split(common, test_size=test_size, random_state=random_state,
                                       stratify=common[label])
    except ValueError:  # fewer test flows than classes
        train, test = train_test_split(common, test_size=test_size, random_state=random_state)
    return pd.concat([train, flows[single]]), test


def check_split(flows: pd.DataFrame, split: str, test_size: float = 0.25, group: str = CAPTURE_COLUMN) -> None:
    """Raise the error :func:`split_flows` would raise, without splitting.

    Raises
    ------
    ConfigError
        For an unknown split or a test size outside (0, 1).
    DataError
        When a split by capture is impossible (no ``group`` column, a single capture).
    """
    if not 0 < test_size < 1:
        raise ConfigError(f"test size must be between 0 and 1, got {test_size}")
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if split == "capture":
        if group not in flows.columns:
            raise DataError(f"flows lack the {group!r} column needed for a split by capture (flows extracted "
                            "from captures have it; for another table name its site column, --group)")
        if flows[group].nunique() < 2:
            raise DataError(f"a split by capture needs flows from at least two values of {group!r}")


def capture_split(
    flows: pd.DataFrame, test_size: float = 0.25, random_state: int = 0, group: str = CAPTURE_COLUMN
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flows split by capture file: no capture has flows on both sides.

    Raises
    ------
    DataError
        When the ``group`` column is missing or holds a single capture.
    """
    check_split(flows, "capture", test_size, group)
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=random_state)
    train_index, test_index = next(splitter.split(flows, groups=flows[group]))
    return flows.iloc[train_index], flows.iloc[test_index]


def classification_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Classes are the union of true and predicted labels, sorted; macro-F1 averages over
    them (a class never predicted and never present does not appear).

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``num_flows``, ``per_class`` (label -> precision, recall,
        f1, support) and ``confusion`` (``labels`` and ``matrix``: rows true, columns
        predicted).
    """
    truth = np.asarray(y_true).astype(str)
    predicted = np.asarray(y_pred).astype(str)
    labels = sorted(set(truth) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0)
    with warnings.catch_warnings():  # one class in all: sklearn warns of the 1x1 matrix, which is right here
        warnings.simplefilter("ignore", UserWarning)
        matrix = confusion_matrix(truth, predicted, labels=labels)
    return {
        "num_flows": len(truth),
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion": {"labels": labels, "matrix": matrix.tolist()},
    }


def split_flows(
    flows: pd.DataFrame, split: str, label: str, test_size: float = 0.25, random_state: int = 0,
    group: str = CAPTURE_COLUMN,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and test flows of a ``"random"`` (stratified) or ``"capture"`` split.

    Raises
    ------
    ConfigError
        For an unknown split or a test size outside (0, 1).
    DataError
        When a split by capture is impossible (see :func:`capture_split`).
    """
    check_split(flows, split, test_size, group)
    if split == "random":
        return random_split(flows, label, test_size, random_state)
    return capture_split(flows, test_size, random_state, group)


def evaluate_on_split(
    model: TrafficModel, flows: pd.DataFrame, split: str, label: str, test_size: float = 0.25,
    random_state: int = 0, group: str = CAPTURE_COLUMN,
) -> dict[str, Any]:
    """Refit ``model``'s recipe on the training side of a split and score the test side.

    Returns
    -------
    dict
        :func:`classification_metrics` of the test flows plus ``split``, ``train_flows``,
        ``test_flows``, ``too_small_to_validate`` (classes of the refitted model's training
        record, see :func:`~fedfleet.traffic.classifiers.fit_classifier`) and, when ``group``
        is a column, ``captures`` (all of them),
        ``train_captures`` and ``test_captures`` (with flows on that side; a random split
        has captures on both sides).
    """
    train, test = split_flows(flows, split, label, test_size, random_state, group)
    refitted = model.refit(train, label=label, random_state=random_state)
    metrics = classification_metrics(test[label], refitted.predict(test))
    sizes: dict[str, Any] = {"split": split, "train_flows": len(train), "test_flows": len(test),
                             "too_small_to_validate": refitted.training["too_small_to_validate"]}
    if group in flows.columns:
        sizes |= {"captures": int(flows[group].nunique()), "train_captures": int(train[group].nunique()),
                  "test_captures": int(test[group].nunique())}
    return sizes | metrics
