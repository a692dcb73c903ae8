"""Splits of a flow table and the metrics reported for a traffic classifier."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from fedfleet.errors import DataError
from fedfleet.traffic.schema import CAPTURE_COLUMN


def random_split(
    flows: pd.DataFrame, label: str, test_size: float = 0.25, random_state: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flows split at random, stratified by ``label`` where every class has two flows."""
    counts = flows[label].value_counts()
    stratify = flows[label] if counts.min() >= 2 else None
    train, test = train_test_split(flows, test_size=test_size, random_state=random_state,
                                   stratify=stratify)
    return train, test


def capture_split(
    flows: pd.DataFrame, test_size: float = 0.25, random_state: int = 0, group: str = CAPTURE_COLUMN
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flows split by capture file: no capture has flows on both sides.

    Raises
    ------
    DataError
        When the ``group`` column is missing or holds a single capture.
    """
    if group not in flows.columns:
        raise DataError(f"flows lack the {group!r} column needed for a split by capture")
    if flows[group].nunique() < 2:
        raise DataError(f"a split by capture needs flows from at least two values of {group!r}")
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
