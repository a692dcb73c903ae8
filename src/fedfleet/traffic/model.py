"""A trained traffic model: column spec + fitted preprocessor + classifier, saved as one folder.

A model folder holds ``model.json`` (format, classifier name and parameters, label,
feature columns, column spec, classes), ``preprocessor.json`` (the fitted mapping and
statistics, readable) and the classifier's weights: ``classifier.safetensors`` for the MLP,
``classifier.joblib`` (a pickle: load only folders you trust) for the trees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from safetensors.torch import load_file, save_file

from fedfleet.errors import DataError
from fedfleet.traffic.classifiers import MLPTrafficClassifier, build_classifier, build_mlp
from fedfleet.traffic.preprocess import TrafficPreprocessor
from fedfleet.traffic.schema import CAPTURE_COLUMN, ColumnSpec

FORMAT_VERSION = 1
MODEL_FILE = "model.json"
PREPROCESSOR_FILE = "preprocessor.json"
MLP_WEIGHTS = "classifier.safetensors"
TREE_FILE = "classifier.joblib"
PREDICT_CHUNK = 10_000  # flows per classifier call in predict_proba


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
    """

    spec: ColumnSpec
    features: list[str]
    preprocessor: TrafficPreprocessor
    classifier: Any
    classifier_name: str

    @property
    def classes(self) -> list[str]:
        return [str(label) for label in self.classifier.classes_]

    def check_schema(self, flows: pd.DataFrame) -> None:
        """Raise a DataError naming the columns that differ when ``flows`` lack a feature."""
        missing = [name for name in self.features if name not in flows.columns]
        if not missing:
            return
        known = {*self.features, *self.spec.exclude, self.spec.label, CAPTURE_COLUMN}
        unexpected = [str(name) for name in flows.columns if name not in known]
        detail = f"; columns the model does not know: {', '.join(unexpected[:10])}" if unexpected else ""
        raise DataError(f"flows do not match the model's schema: missing {', '.join(missing)}{detail}")

    def transform(self, flows: pd.DataFrame) -> np.ndarray:
        """Preprocessed features, (N, D) float32."""
        self.check_schema(flows)
        return np.asarray(self.preprocessor.transform(flows[self.features]))

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
        }
        (directory / MODEL_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        (directory / PREPROCESSOR_FILE).write_text(json.dumps(self.preprocessor.to_dict(), indent=1) + "\n")
        if self.classifier_name == "mlp":
            save_file(self.classifier.module_.state_dict(), str(directory / MLP_WEIGHTS))
        else:
            joblib.dump(self.classifier, directory / TREE_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> TrafficModel:
        """Read a model folder written by :meth:`save`.

        Raises
        ------
        DataError
            When the folder or one of its files is missing or unreadable.
        """
        directory = Path(directory)
        try:
            meta = json.loads((directory / MODEL_FILE).read_text())
            state = json.loads((directory / PREPROCESSOR_FILE).read_text())
        except FileNotFoundError as exc:
            raise DataError(f"{directory} is not a traffic model folder (no {Path(exc.filename).name})") from None
        except json.JSONDecodeError as exc:
            raise DataError(f"{directory}: corrupt model file ({exc})") from None
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{directory}: model format {meta.get('format_version')} is not "
                            f"{FORMAT_VERSION}; retrain with this version of fedfleet")
        name = meta["classifier"]
        if name == "mlp":
            classifier = _load_mlp(directory, meta)
        else:
            try:
                classifier = joblib.load(directory / TREE_FILE)
            except (OSError, EOFError) as exc:
                raise DataError(f"{directory / TREE_FILE}: cannot read classifier ({exc})") from None
        return cls(ColumnSpec.model_validate(meta["spec"]), list(meta["features"]),
                   TrafficPreprocessor.from_dict(state), classifier, name)


def _load_mlp(directory: Path, meta: dict[str, Any]) -> MLPTrafficClassifier:
    params: dict[str, Any] = {key: tuple(value) if isinstance(value, list) else value
                              for key, value in meta["classifier_params"].items()}
    classifier = MLPTrafficClassifier(**params)
    classifier.classes_ = np.asarray(meta["classes"], dtype=object)
    try:
        weights = load_file(str(directory / MLP_WEIGHTS))
    except (OSError, RuntimeError) as exc:
        raise DataError(f"{directory / MLP_WEIGHTS}: cannot read weights ({exc})") from None
    classifier.n_features_in_ = int(weights["0.weight"].shape[1])
    classifier.module_ = build_mlp(classifier.n_features_in_, len(classifier.classes_), classifier.hidden)
    classifier.module_.load_state_dict(weights)
    classifier.module_.eval()
    return classifier


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
        Extra :class:`TrafficPreprocessor` parameters (e.g. ``port_mode="bucket"``).
    classifier_params : dict, optional
        Extra classifier parameters.
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
    """
    if spec.label is None:
        raise DataError("no label column given; pass --label COLUMN (e.g. application_category_name)")
    features = spec.feature_columns(list(flows.columns))
    labels = flows[spec.label]
    if labels.isna().any():
        raise DataError(f"label column {spec.label!r} has {int(labels.isna().sum())} empty values; "
                        "drop those flows first")
    if labels.nunique() < 2:
        raise DataError(f"label column {spec.label!r} needs at least two classes to train on")
    preprocessor = TrafficPreprocessor(ports=tuple(spec.ports), categorical=tuple(spec.categorical),
                                       **(preprocessing or {}))
    inputs = preprocessor.fit_transform(flows[features])
    model = build_classifier(classifier, random_state=random_state, **(classifier_params or {}))
    model.fit(inputs, labels.astype(str).to_numpy())
    return TrafficModel(spec, features, preprocessor, model, classifier)
