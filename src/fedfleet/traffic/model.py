"""A trained traffic model: column spec + fitted preprocessor + classifier, saved as one folder.

A model folder holds ``model.json`` (the manifest: format, classifier name and parameters,
label, feature columns, column spec, classes, what training saw), ``preprocessor.json``
(the fitted mapping and statistics, readable) and ``classifier.safetensors`` (the MLP's
weights or the trees' node arrays, see :mod:`fedfleet.traffic.weights`). Nothing in a
folder is code: loading reads JSON and arrays and checks them, so a crafted folder is a
one-line :class:`~fedfleet.errors.DataError`, never code that runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fedfleet.errors import ConfigError, DataError
from fedfleet.json_files import read_json
from fedfleet.traffic.classifiers import build_classifier, fit_classifier
from fedfleet.traffic.preprocess import TrafficPreprocessor
from fedfleet.traffic.schema import CAPTURE_COLUMN, ColumnSpec
from fedfleet.traffic.weights import load_mlp, load_tree, save_mlp, save_tree

FORMAT_VERSION = 2  # 1: trees pickled with joblib (refused: a pickle runs code when loaded)
MODEL_FILE = "model.json"
PREPROCESSOR_FILE = "preprocessor.json"
WEIGHTS_FILE = "classifier.safetensors"
MODEL_FOLDER_FILES = frozenset({MODEL_FILE, PREPROCESSOR_FILE, WEIGHTS_FILE})  # what save() writes
PREDICT_CHUNK = 10_000  # flows per classifier call in predict_proba


class Manifest(BaseModel):
    """``model.json``: what a model folder holds, checked field by field on load."""

    model_config = ConfigDict(extra="forbid")

    format_version: Literal[2]
    classifier: Literal["tree", "mlp"]
    classifier_params: dict[str, Any]
    classes: list[str] = Field(min_length=2)
    features: list[str] = Field(min_length=1)
    spec: ColumnSpec
    training: dict[str, Any] = Field(default_factory=dict)


@dataclass
class TrafficModel:
    """Preprocessor and classifier applied together to flow tables.

    Attributes
    ----------
    spec : ColumnSpec
        How the training flows were read (label, ports, nominal columns, exclusions).
    features : list of str
        Feature columns, in the order the preprocessor saw them.
    preprocessor : TrafficPreprocessor
        Fitted preprocessing.
    classifier : estimator
        Fitted classifier with ``predict_proba`` and ``classes_``.
    classifier_name : str
        ``tree`` or ``mlp``.
    training : dict
        What fitting saw: ``flows``, ``class_flows`` (label -> count),
        ``too_small_to_validate`` (labels), ``validation_flows`` and the tree's ``iterations``
        (see :func:`~fedfleet.traffic.classifiers.fit_classifier`); empty for a model not
        fitted by :func:`fit_model`.
    """

    spec: ColumnSpec
    features: list[str]
    preprocessor: TrafficPreprocessor
    classifier: Any
    classifier_name: str
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return [str(label) for label in self.classifier.classes_]

    def check_schema(self, flows: pd.DataFrame) -> None:
        """Raise a DataError naming the columns that differ when ``flows`` lack a feature.

        A column the preprocessor dropped (no valid value in training) may be absent.
        """
        dropped = set(self.preprocessor.dropped_)
        missing = [name for name in self.features if name not in flows.columns and name not in dropped]
        if not missing:
            return
        known = {*self.features, *self.spec.exclude, self.spec.label, CAPTURE_COLUMN}
        unexpected = [str(name) for name in flows.columns if name not in known]
        detail = f"; columns the model does not know: {', '.join(unexpected[:10])}" if unexpected else ""
        raise DataError(f"flows do not match the model's schema: missing {', '.join(missing)}{detail}")

    def transform(self, flows: pd.DataFrame) -> np.ndarray:
        """Preprocessed features, (N, D) float64 (NaN = null)."""
        self.check_schema(flows)
        present = all(name in flows.columns for name in self.features)
        frame = flows[self.features] if present else flows.reindex(columns=self.features)  # dropped: all null
        return np.asarray(self.preprocessor.transform(frame))

    def predict_proba(self, flows: pd.DataFrame) -> np.ndarray:
        """Class probabilities, (N, n_classes), columns in :attr:`classes` order.

        Large tables are processed in chunks of ``PREDICT_CHUNK`` flows, which keeps the
        trees' working set in cache (about twice as fast as one 100k-flow pass).
        """
        self.check_schema(flows)
        parts = [np.asarray(self.classifier.predict_proba(self.transform(flows.iloc[start:start + PREDICT_CHUNK])))
                 for start in range(0, len(flows), PREDICT_CHUNK)]
        return np.concatenate(parts) if parts else np.empty((0, len(self.classes)), dtype=np.float32)

    def predict(self, flows: pd.DataFrame) -> np.ndarray:
        """Traffic type of each flow."""
        return np.asarray(self.classes)[self.predict_proba(flows).argmax(axis=1)]

    def refit(self, flows: pd.DataFrame, label: str | None = None, random_state: int | None = None) -> TrafficModel:
        """A new model made by this one's recipe, fitted on ``flows``.

        The recipe is the column spec and feature list, the preprocessing parameters, the
        classifier and its parameters; the fitted state (mapping, statistics, weights) is not
        reused. A federatedly trained MLP is refitted centrally. Used to evaluate a model
        configuration on a train/test split of labelled flows.

        Parameters
        ----------
        flows : pandas.DataFrame
            Labelled training flows with the model's feature columns.
        label : str, optional
            Label column; default the spec's.
        random_state : int, optional
            Classifier seed; default the saved one (0 when none was saved).
        """
        preprocessing = {key: value for key, value in self.preprocessor.get_params().items()
                         if key not in ("ports", "categorical")}
        params = dict(self.classifier.get_params())
        saved_seed = params.pop("random_state", None)
        seed = random_state if random_state is not None else saved_seed if isinstance(saved_seed, int) else 0
        spec = self.spec.with_label(label).model_copy(update={"features": list(self.features)})
        return fit_model(flows, spec, self.classifier_name, preprocessing, params, seed)

    def save(self, directory: str | Path) -> Path:
        """Write the model folder (created if needed) and return its path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params = {key: list(value) if isinstance(value, tuple) else value
                  for key, value in self.classifier.get_params().items()}
        meta = {
            "format_version": FORMAT_VERSION,
            "classifier": self.classifier_name,
            "classifier_params": params,
            "classes": self.classes,
            "features": self.features,
            "spec": self.spec.model_dump(),
            "training": self.training,
        }
        (directory / MODEL_FILE).write_text(json.dumps(meta, indent=2, allow_nan=False, default=_plain) + "\n")
        (directory / PREPROCESSOR_FILE).write_text(json.dumps(self.preprocessor.to_dict(), indent=1) + "\n")
        if self.classifier_name == "mlp":
            save_mlp(self.classifier, directory / WEIGHTS_FILE)
        else:
            save_tree(self.classifier, directory / WEIGHTS_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> TrafficModel:
        """Read a model folder written by :meth:`save`, checking every file against the others.

        Raises
        ------
        DataError
            When the folder or one of its files is missing, unreadable, malformed or
            inconsistent (classes, features or weights that do not fit together).
        """
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise DataError(f"{directory} is a file, not a traffic model folder; give the folder "
                            "`fedfleet traffic train --out` wrote")
        manifest = _read_manifest(directory)
        preprocessor = TrafficPreprocessor.from_dict(_read_json(directory / PREPROCESSOR_FILE))
        if list(preprocessor.feature_names_in_) != manifest.features:
            raise DataError(f"{directory}: {MODEL_FILE} and {PREPROCESSOR_FILE} list different feature columns; "
                            "the folder was edited or mixed from two models, retrain")
        if sorted(set(manifest.classes)) != manifest.classes:
            raise DataError(f"{directory / MODEL_FILE}: classes must be distinct and sorted, as training wrote them")
        params = {key: tuple(value) if isinstance(value, list) else value
                  for key, value in manifest.classifier_params.items()}
        seed = params.pop("random_state", 0)
        try:
            recipe = build_classifier(manifest.classifier, seed if isinstance(seed, int) else 0, **params)
        except ConfigError as exc:
            raise DataError(f"{directory / MODEL_FILE}: classifier_params: {exc}") from None
        loader = load_mlp if manifest.classifier == "mlp" else load_tree
        width = len(preprocessor.feature_names_out_)
        classifier = loader(directory / WEIGHTS_FILE, recipe.get_params(), manifest.classes, width)
        return cls(manifest.spec, manifest.features, preprocessor, classifier, manifest.classifier,
                   manifest.training)


def _plain(value: Any) -> Any:
    """A NumPy scalar among the classifier parameters as the Python number JSON can hold."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"classifier parameter value {value!r} cannot be saved in {MODEL_FILE}")


def _read_json(path: Path) -> Any:
    """A JSON file's content; a missing, binary or malformed file is a DataError naming it."""
    return read_json(path, f"{path.parent} is not a traffic model folder (no {path.name})",
                     "corrupt model file", "retrain or restore the folder")


def _read_manifest(directory: Path) -> Manifest:
    """``model.json``, refused when written by another format or edited into an invalid one."""
    raw = _read_json(directory / MODEL_FILE)
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        old = " (its trees are a pickle, which is never loaded)" if version == 1 else ""
        raise DataError(f"{directory}: model format {version} is not {FORMAT_VERSION}{old}; "
                        "retrain with this version of fedfleet")
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise DataError(f"{directory / MODEL_FILE}: {key}: {first['msg']}; the file was edited, retrain") from None


def fit_model(
    flows: pd.DataFrame,
    spec: ColumnSpec,
    classifier: str = "tree",
    preprocessing: dict[str, Any] | None = None,
    classifier_params: dict[str, Any] | None = None,
    random_state: int = 0,
) -> TrafficModel:
    """Fit the preprocessor and a classifier on labelled flows.

    Parameters
    ----------
    flows : pandas.DataFrame
        Training flows, including ``spec.label``.
    spec : ColumnSpec
        Label and column roles; ``spec.label`` must be set.
    classifier : {"tree", "mlp"}
        Which classifier to train.
    preprocessing : dict, optional
        Extra :class:`TrafficPreprocessor` parameters (e.g. ``port_mode="bucket"``); by
        default values are normalised for the MLP only (trees compare raw values, which keeps
        every distinct value apart).
    classifier_params : dict, optional
        Classifier parameters over its defaults (checked before any training), including
        ``class_weight``.
    random_state : int
        Seed of the classifier.

    Returns
    -------
    TrafficModel
        The fitted model.

    Raises
    ------
    DataError
        When the label is unset or missing, a listed column is missing, or a label is null.
    ConfigError
        For an unknown classifier parameter, a bad value, or a class weight for a label the
        flows do not have.
    """
    if spec.label is None:
        raise DataError("no label column given; pass --label COLUMN (e.g. application_category_name)")
    features = spec.feature_columns(list(flows.columns))
    if not features:
        raise DataError(f"the flow table has no feature column besides the label and the columns left out "
                        f"(columns: {', '.join(map(str, flows.columns[:8]))}); give a table with flow features")
    labels = flows[spec.label]
    if labels.isna().any():
        raise DataError(f"label column {spec.label!r} has {int(labels.isna().sum())} empty values; "
                        "drop those flows first")
    if labels.nunique() < 2:
        raise DataError(f"label column {spec.label!r} needs at least two classes to train on")
    preprocessor = TrafficPreprocessor(ports=tuple(spec.ports), categorical=tuple(spec.categorical),
                                       **({"normalise": classifier == "mlp"} | (preprocessing or {})))
    model = build_classifier(classifier, random_state=random_state, **(classifier_params or {}))
    targets = labels.astype(str).to_numpy()
    _check_class_weight(model.get_params().get("class_weight"), targets)
    inputs = preprocessor.fit_transform(flows[features])
    info = fit_classifier(model, inputs, targets)
    classes, counts = np.unique(targets, return_counts=True)
    training = {"flows": len(targets), "class_flows": dict(zip(classes.tolist(), counts.tolist(), strict=True))} | info
    return TrafficModel(spec, features, preprocessor, model, classifier, training)


def _check_class_weight(class_weight: Any, labels: np.ndarray) -> None:
    """Refuse a class-weight mapping that names a label the training flows do not have."""
    if isinstance(class_weight, dict):
        unknown = sorted(set(map(str, class_weight)) - set(labels))
        if unknown:
            raise ConfigError(f"class weight for {', '.join(unknown)}: no training flow has that label; "
                              f"labels: {', '.join(sorted(set(labels))[:10])}")
