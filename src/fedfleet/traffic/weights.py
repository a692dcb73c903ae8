"""Classifier weights as safetensors: arrays only, so reading a file never runs code.

The trees of a fitted :class:`~sklearn.ensemble.HistGradientBoostingClassifier` are stored
as their node arrays (one tensor per field of scikit-learn's predictor record, all trees
concatenated, ``tree_sizes`` giving each tree's length), with the baseline prediction and
the training and validation scores. Loading rebuilds the classifier around those arrays
after checking every one of them: dtypes, shapes, child indices that point forward inside
their own tree (so traversal ends), feature indices inside the input width, finite leaf
values. The MLP is its ``state_dict``, loaded strictly into a network of the manifest's shape.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_arrays
from safetensors.numpy import save_file as save_arrays
from safetensors.torch import load_file as load_tensors
from safetensors.torch import save_file as save_tensors
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

from fedfleet.errors import DataError
from fedfleet.traffic.classifiers import MLPTrafficClassifier, build_mlp

NODE_PREFIX = "nodes."
TREE_KEYS = frozenset({"tree_sizes", "baseline", "train_score", "validation_score",
                       *(NODE_PREFIX + name for name in PREDICTOR_RECORD_DTYPE.names or ())})
NO_BITSETS = np.zeros((0, 8), dtype=np.uint32)  # no categorical splits (the preprocessor encodes nominals)


def save_tree(classifier: HistGradientBoostingClassifier, path: Path) -> None:
    """Write a fitted classifier's trees to ``path`` (safetensors).

    Raises
    ------
    DataError
        When the classifier splits on categories itself (``categorical_features``), which
        this format does not hold.
    """
    if classifier.is_categorical_ is not None:
        raise DataError("a tree with categorical_features cannot be saved; leave nominal columns to the "
                        "preprocessor (the spec's categorical list)")
    trees = [predictor.nodes for iteration in classifier._predictors for predictor in iteration]
    nodes = np.concatenate(trees)
    arrays = {NODE_PREFIX + name: np.ascontiguousarray(nodes[name]) for name in PREDICTOR_RECORD_DTYPE.names or ()}
    arrays |= {"tree_sizes": np.asarray([len(tree) for tree in trees], dtype=np.int64),
               "baseline": np.ascontiguousarray(classifier._baseline_prediction, dtype=np.float64),
               "train_score": np.asarray(classifier.train_score_, dtype=np.float64),
               "validation_score": np.asarray(classifier.validation_score_, dtype=np.float64)}
    save_arrays(arrays, str(path))


def load_tree(path: Path, params: dict[str, Any], classes: Sequence[str], num_features: int
              ) -> HistGradientBoostingClassifier:
    """The classifier saved by :func:`save_tree`, with constructor ``params``.

    Parameters
    ----------
    path : Path
        The ``classifier.safetensors`` file.
    params : dict
        The classifier's parameters (from the manifest; already validated).
    classes : sequence of str
        Class labels in the classifier's order.
    num_features : int
        Width of the preprocessed input.

    Raises
    ------
    DataError
        When the file is unreadable or any array is inconsistent with the others or with
        ``classes`` and ``num_features``.
    """
    arrays = _read(path, load_arrays)
    missing, unexpected = sorted(TREE_KEYS - set(arrays)), sorted(set(arrays) - TREE_KEYS)
    if missing or unexpected:
        raise DataError(f"{path}: not a tree classifier of this version (missing {', '.join(missing) or '-'}, "
                        f"unexpected {', '.join(unexpected) or '-'}); retrain")
    per_iteration = 1 if len(classes) <= 2 else len(classes)
    nodes = _node_records(path, arrays, num_features)
    sizes = arrays["tree_sizes"]
    baseline = arrays["baseline"]
    if baseline.dtype != np.float64 or baseline.shape != (1, per_iteration) or not np.isfinite(baseline).all():
        raise DataError(f"{path}: baseline must be finite float64 of shape (1, {per_iteration}) for "
                        f"{len(classes)} classes, not {baseline.dtype} {baseline.shape}")
    if len(sizes) % per_iteration:
        raise DataError(f"{path}: {len(sizes)} trees is not a multiple of {per_iteration} trees per iteration")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    trees = [TreePredictor(nodes[start:end], NO_BITSETS, NO_BITSETS)
             for start, end in itertools.pairwise(bounds)]
    classifier = HistGradientBoostingClassifier(**params)
    classifier.classes_ = np.asarray(classes)
    classifier.n_trees_per_iteration_ = per_iteration
    classifier.n_features_in_ = num_features
    classifier.is_categorical_ = None
    classifier._preprocessor = None
    classifier._baseline_prediction = baseline
    classifier._predictors = [trees[i:i + per_iteration] for i in range(0, len(trees), per_iteration)]
    classifier.train_score_ = arrays["train_score"]
    classifier.validation_score_ = arrays["validation_score"]
    classifier.do_early_stopping_ = len(classifier.validation_score_) > 0
    classifier._bin_mapper = _BinMapper()
    classifier._bin_mapper.is_categorical_ = np.zeros(num_features, dtype=np.uint8)
    classifier._bin_mapper.bin_thresholds_ = []
    classifier._loss = classifier._get_loss(sample_weight=None)
    return classifier


def _node_records(path: Path, arrays: dict[str, np.ndarray], num_features: int) -> np.ndarray:
    """All trees' nodes as one record array, after checking that traversal stays inside each tree."""
    sizes = arrays["tree_sizes"]
    total = len(arrays[NODE_PREFIX + "value"])
    if sizes.dtype != np.int64 or sizes.ndim != 1 or len(sizes) == 0 or (sizes < 1).any() or sizes.sum() != total:
        raise DataError(f"{path}: tree_sizes must be positive int64 summing to the {total} nodes")
    nodes = np.empty(total, dtype=PREDICTOR_RECORD_DTYPE)
    for name in PREDICTOR_RECORD_DTYPE.names or ():
        field = arrays[NODE_PREFIX + name]
        if field.dtype != PREDICTOR_RECORD_DTYPE[name] or field.shape != (total,):
            raise DataError(f"{path}: node field {name!r} must be {PREDICTOR_RECORD_DTYPE[name]} of length "
                            f"{total}, not {field.dtype} {field.shape}")
        nodes[name] = field
    tree_start = np.repeat(np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
    local = np.arange(total) - tree_start
    size = np.repeat(sizes, sizes)
    inner = nodes["is_leaf"] == 0
    children_ok = all(((nodes[side] > local) & (nodes[side] < size))[inner].all() for side in ("left", "right"))
    features_ok = ((nodes["feature_idx"] >= 0) & (nodes["feature_idx"] < num_features))[inner].all()
    if not (children_ok and features_ok):
        raise DataError(f"{path}: a tree node points outside its tree or its {num_features} features")
    if nodes["is_categorical"].any() or not np.isfinite(nodes["value"][~inner]).all():
        raise DataError(f"{path}: trees hold categorical splits or non-finite leaf values")
    return nodes


def save_mlp(classifier: MLPTrafficClassifier, path: Path) -> None:
    """Write the MLP's weights to ``path`` (safetensors)."""
    save_tensors(classifier.module_.state_dict(), str(path))


def load_mlp(path: Path, params: dict[str, Any], classes: Sequence[str], num_features: int) -> MLPTrafficClassifier:
    """The MLP saved by :func:`save_mlp`, shaped by ``params`` (its hidden widths) and the sizes given.

    Raises
    ------
    DataError
        When the file is unreadable or its tensors do not fit that network.
    """
    tensors = _read(path, load_tensors)
    classifier = MLPTrafficClassifier(**params)
    widths = [num_features, *classifier.hidden, len(classes)]
    expected: dict[str, tuple[int, ...]] = {}  # build_mlp's layers: Linear at every other index of the Sequential
    for layer, (width_in, width_out) in enumerate(itertools.pairwise(widths)):
        expected |= {f"{2 * layer}.weight": (width_out, width_in), f"{2 * layer}.bias": (width_out,)}
    shapes = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
    if shapes != expected:  # checked before any network is built from the manifest's widths
        raise DataError(f"{path}: weights do not fit an MLP of {num_features} inputs, hidden "
                        f"{list(classifier.hidden)} and {len(classes)} classes")
    classifier.classes_ = np.asarray(classes, dtype=object)
    classifier.n_features_in_ = num_features
    classifier.module_ = build_mlp(num_features, len(classes), classifier.hidden)
    classifier.module_.load_state_dict({name: tensor.float() for name, tensor in tensors.items()})
    if not all(torch.isfinite(tensor).all() for tensor in tensors.values()):
        raise DataError(f"{path}: weights hold NaN or infinite values")
    classifier.module_.eval()
    return classifier


def _read(path: Path, loader: Any) -> dict[str, Any]:
    """The tensors of a safetensors file; an unreadable or corrupt file is a DataError."""
    try:
        return dict(loader(str(path)))
    except FileNotFoundError:
        raise DataError(f"{path.parent} is not a traffic model folder (no {path.name})") from None
    except (OSError, SafetensorError) as exc:
        raise DataError(f"{path}: cannot read classifier weights ({exc}); the file is corrupt or not "
                        "safetensors") from None
