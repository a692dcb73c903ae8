"""The traffic MLP trained federatedly: each site (by default each capture file) is a client
that keeps its flows; fedfleet's engine runs FedAvg (or any configured strategy) over them.

The preprocessor is fitted without pooling flows (:func:`fit_preprocessor_federated`): each
site fits its own nominal mappings, the server merges them; each site then sends per-column
moments (count, mean, squared deviations, min, max) under the merged mapping, and the
server sums them into the normalisation statistics — the same preprocessor as one fitted
on the pooled flows.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone

from fedfleet.config import RunConfig
from fedfleet.data.datasets import ArrayDataset
from fedfleet.errors import DataError
from fedfleet.fl import FederatedData, RunResult, run_simulation
from fedfleet.traffic.classifiers import MLPTrafficClassifier, as_tensor, build_mlp
from fedfleet.traffic.model import TrafficModel
from fedfleet.traffic.preprocess import TrafficPreprocessor
from fedfleet.traffic.schema import CAPTURE_COLUMN, ColumnSpec

FEDERATED_PREPROCESSING = {"port_mode": "normalise"}  # raw port numbers derail SGD (see the docs)


@dataclass
class FederatedTrafficResult:
    """A federatedly trained traffic model and the engine's run record."""

    model: TrafficModel
    run: RunResult
    client_sizes: list[int]


def fit_preprocessor_federated(
    template: TrafficPreprocessor, sites: Sequence[pd.DataFrame]
) -> TrafficPreprocessor:
    """Fit ``template``'s preprocessing from per-site summaries; flows stay at their sites.

    Parameters
    ----------
    template : TrafficPreprocessor
        Unfitted preprocessor whose parameters are used (it is not modified).
    sites : sequence of pandas.DataFrame
        Each site's feature columns.

    Returns
    -------
    TrafficPreprocessor
        Fitted; equal (up to rounding) to ``clone(template).fit(pd.concat(sites))``.
    """
    local = [clone(template).fit_mapping(site) for site in sites]  # at each site
    merged = clone(template).merge_mappings(local)  # at the server
    moments = [merged.column_moments(site) for site in sites]  # at each site
    totals = {name: functools.reduce(operator.add, (part[name] for part in moments))
              for name in moments[0]}
    return merged.fit_scaling(totals)


def site_datasets(
    flows: pd.DataFrame, inputs: np.ndarray, targets: np.ndarray, classes: tuple[str, ...], site: str
) -> list[ArrayDataset]:
    """One data set per distinct value of ``flows[site]``, in sorted site order."""
    groups = flows.groupby(site, sort=True).indices
    return [ArrayDataset(as_tensor(inputs[index]), torch.as_tensor(targets[index]), classes)
            for index in groups.values()]


def train_federated(
    train: pd.DataFrame,
    test: pd.DataFrame,
    spec: ColumnSpec,
    config: RunConfig,
    site: str = CAPTURE_COLUMN,
    hidden: Sequence[int] = (128, 64),
    preprocessing: dict[str, Any] | None = None,
    out_dir: str | None = None,
) -> FederatedTrafficResult:
    """Train the traffic MLP with the federated engine, one client per site.

    Parameters
    ----------
    train, test : pandas.DataFrame
        Labelled flows; ``train`` is split into clients by ``site``, ``test`` is the
        server's evaluation set.
    spec : ColumnSpec
        Column roles; ``spec.label`` must be set.
    config : RunConfig
        Engine settings (rounds, cohort, local epochs, lr, strategy, seed);
        ``data.num_clients`` is set to the number of sites.
    site : str
        Column naming each flow's site.
    hidden : sequence of int
        MLP hidden widths.
    preprocessing : dict, optional
        TrafficPreprocessor parameters; default normalises ports like other columns.
    out_dir : path, optional
        Run directory for the engine's metrics and summary.

    Returns
    -------
    FederatedTrafficResult
        The model (usable like any TrafficModel), the run and the client sizes.
    """
    if spec.label is None or site not in train.columns:
        raise DataError(f"federated training needs a label and a {site!r} column naming each flow's site")
    features = [name for name in spec.feature_columns(list(train.columns)) if name != site]
    template = TrafficPreprocessor(ports=tuple(spec.ports), categorical=tuple(spec.categorical),
                                   **(preprocessing or FEDERATED_PREPROCESSING))
    sites = [group[features] for _, group in train.groupby(site, sort=True)]
    preprocessor = fit_preprocessor_federated(template, sites)
    train_inputs = preprocessor.transform(train[features])
    classes = tuple(sorted(set(train[spec.label].astype(str)) | set(test[spec.label].astype(str))))
    index = {label: i for i, label in enumerate(classes)}
    train_targets = np.array(train[spec.label].astype(str).map(index), dtype=np.int64)
    test_targets = np.array(test[spec.label].astype(str).map(index), dtype=np.int64)
    clients = site_datasets(train, train_inputs, train_targets, classes, site)
    test_set = ArrayDataset(as_tensor(preprocessor.transform(test[features])),
                            torch.as_tensor(test_targets), classes)
    clients_per_round = min(config.train.clients_per_round, len(clients))
    config = config.model_copy(update={
        "data": config.data.model_copy(update={"num_clients": len(clients)}),
        "train": config.train.model_copy(update={"clients_per_round": clients_per_round}),
    })
    torch.manual_seed(config.seed)
    network = build_mlp(train_inputs.shape[1], len(classes), hidden)
    run = run_simulation(config, FederatedData(clients, test_set), network, out_dir)
    classifier = MLPTrafficClassifier(hidden=tuple(hidden), random_state=config.seed)
    classifier.classes_ = np.asarray(classes, dtype=object)
    classifier.n_features_in_ = train_inputs.shape[1]
    classifier.module_ = run.model.eval()
    model = TrafficModel(spec, features, preprocessor, classifier, "mlp")
    return FederatedTrafficResult(model, run, [len(client) for client in clients])
