"""Empty columns, float resolution and damaged saved states of the traffic preprocessing."""

import json

import numpy as np
import pandas as pd
import pytest

from fedfleet.errors import DataError
from fedfleet.traffic.federated import fit_preprocessor_federated
from fedfleet.traffic.model import fit_model
from fedfleet.traffic.preprocess import Moments, TrafficPreprocessor
from fedfleet.traffic.schema import ColumnSpec


def empty_columns_table(rows: int = 200) -> pd.DataFrame:
    """Separable flows with the empty columns real tables carry: CIC-IDS2017's relabelled
    ``Attempted Category`` (-1 everywhere), Zeek's unset ``local_orig`` and empty
    ``tunnel_parents`` (``(empty)`` once a log is written as CSV)."""
    rng = np.random.default_rng(0)
    label = np.where(np.arange(rows) % 2 == 0, "a", "b")
    return pd.DataFrame({
        "bytes": np.where(label == "a", 100.0, 900.0) + rng.normal(0, 5, rows),
        "Attempted Category": np.full(rows, -1),
        "local_orig": pd.Series([None] * rows, dtype=object),
        "tunnel_parents": ["(empty)" if i % 2 else "" for i in range(rows)],
        "rate": np.full(rows, np.nan),
        "label": label,
    })


def test_all_null_columns_are_dropped_and_named():
    table = empty_columns_table().drop(columns=["label"])
    pre = TrafficPreprocessor(ports=(), categorical=("tunnel_parents",)).fit(table)
    assert pre.dropped_ == ["Attempted Category", "local_orig", "tunnel_parents", "rate"]
    assert "Attempted Category" not in pre.get_feature_names_out()
    out = pre.transform(table)
    assert out.shape == (len(table), len(pre.get_feature_names_out()))
    assert not np.isnan(out[:, list(pre.get_feature_names_out()).index("bytes")]).any()


@pytest.mark.parametrize("classifier", ["tree", "mlp"])
def test_training_succeeds_on_a_table_with_empty_columns(classifier):
    table = empty_columns_table()
    params = {"epochs": 2} if classifier == "mlp" else {}
    model = fit_model(table, ColumnSpec(label="label"), classifier, classifier_params=params)
    assert model.preprocessor.dropped_ == ["Attempted Category", "local_orig", "tunnel_parents", "rate"]
    assert (model.predict(table) == table["label"]).mean() > 0.9


def test_a_table_with_no_valid_value_is_one_clear_error():
    with pytest.raises(DataError, match="every feature column is empty"):
        TrafficPreprocessor(ports=()).fit(pd.DataFrame({"rate": [np.nan, np.inf], "n": [-1, -2]}))


def test_federated_fit_drops_only_columns_empty_at_every_site():
    site_a = pd.DataFrame({"bytes": [1.0, 2.0], "rare": [np.nan, np.nan], "never": [np.nan, np.nan]})
    site_b = pd.DataFrame({"bytes": [3.0, 4.0], "rare": [5.0, np.nan], "never": [np.nan, -1.0]})
    pre = fit_preprocessor_federated(TrafficPreprocessor(ports=()), [site_a, site_b])
    assert pre.dropped_ == ["never"]
    assert list(pre.get_feature_names_out()) == ["bytes", "rare"]
    pooled = TrafficPreprocessor(ports=()).fit(pd.concat([site_a, site_b]))
    assert pooled.dropped_ == ["never"]


def test_sites_share_only_counts_of_columns_that_are_not_normalised():
    site = pd.DataFrame({"dst_port": [443, 80, np.nan], "bytes": [1.0, 3.0, 5.0]})
    moments = TrafficPreprocessor(ports=("dst_port",)).fit_mapping(site).column_moments(site)
    assert moments["dst_port"] == Moments(2, 0.0, 0.0, np.inf, -np.inf)  # ports are never normalised
    assert moments["bytes"].mean == 3.0 and moments["bytes"].high == 5.0
    unscaled = TrafficPreprocessor(ports=("dst_port",), normalise=False).fit_mapping(site).column_moments(site)
    assert unscaled["bytes"] == Moments(3, 0.0, 0.0, np.inf, -np.inf)


def rates(count: int = 15_000) -> pd.DataFrame:
    """A CICFlowMeter-like packets-per-second column: many distinct values over 7 decades."""
    rng = np.random.default_rng(1)
    return pd.DataFrame({"Fwd Packets/s": np.unique(np.round(10 ** rng.uniform(-1, 6, count), 6))})


def test_unscaled_output_keeps_every_distinct_value_even_beside_a_huge_one():
    frame = rates()
    frame.loc[len(frame)] = 1e30  # one absurd value must not squeeze the rest together
    out = TrafficPreprocessor(ports=(), normalise=False).fit_transform(frame)[:, 0]
    values = frame["Fwd Packets/s"].to_numpy()
    np.testing.assert_array_equal(out, values)
    assert len(np.unique(out)) == len(np.unique(values))


def test_standardised_output_keeps_distinct_values_that_float32_would_merge():
    frame = rates()
    values = frame["Fwd Packets/s"].to_numpy()
    standard = (values - values.mean()) / values.std()
    assert len(np.unique(standard.astype(np.float32))) < 0.9 * len(values)  # the old collapse
    out = TrafficPreprocessor(ports=()).fit_transform(frame)[:, 0]
    assert out.dtype == np.float64
    assert len(np.unique(out)) == len(values)


def test_the_tree_model_sees_every_distinct_value_of_a_column_with_a_huge_one():
    frame = rates(2_000)
    frame.loc[len(frame)] = 1e30
    frame["label"] = np.where(frame["Fwd Packets/s"] > 1000, "fast", "slow")
    model = fit_model(frame, ColumnSpec(label="label"), "tree")
    inputs = model.transform(frame)[:, 0]
    assert len(np.unique(inputs)) == len(frame)
    assert (model.predict(frame) == frame["label"]).mean() > 0.99


def test_log_standard_scaling_keeps_columns_apart_beside_a_huge_value():
    frame = pd.DataFrame({"bytes": [10.0, 20.0, 30.0, 40.0, 1e30]})
    out = TrafficPreprocessor(ports=(), scaling="log-standard").fit_transform(frame)[:, 0]
    assert np.all(np.diff(out[:4]) > 1e-3)  # standard scaling would map all four to about -0.5


def fitted_state() -> dict:
    frame = pd.DataFrame({"bytes": [1.0, 2.0, 3.0], "proto": ["tcp", "udp", "tcp"], "dst_port": [80, 53, 80]})
    return TrafficPreprocessor(ports=("dst_port",)).fit(frame).to_dict()


def damaged(change):
    state = json.loads(json.dumps(fitted_state()))
    change(state)
    return state


@pytest.mark.parametrize("state", [
    pytest.param([1, 2], id="a list"),
    pytest.param("text", id="a string"),
    pytest.param(damaged(lambda s: s.pop("kinds")), id="missing kinds"),
    pytest.param(damaged(lambda s: s.update(extra=1)), id="unknown key"),
    pytest.param(damaged(lambda s: s["offset"].update(bytes="abc")), id="text offset"),
    pytest.param(damaged(lambda s: s["scale"].update(bytes=0)), id="zero scale"),
    pytest.param(damaged(lambda s: s["scale"].update(bytes=float("nan"))), id="nan scale"),
    pytest.param(damaged(lambda s: s["kinds"].update(bytes="colour")), id="unknown kind"),
    pytest.param(damaged(lambda s: s["kinds"].update(ghost="numeric")), id="kind of an unseen column"),
    pytest.param(damaged(lambda s: s["categories"].pop("proto")), id="nominal column without mapping"),
    pytest.param(damaged(lambda s: s["categories"].update(proto="tcp")), id="mapping not a list"),
    pytest.param(damaged(lambda s: s["params"].update(colour=1)), id="unknown parameter"),
    pytest.param(damaged(lambda s: s["params"].update(scaling="cubic")), id="bad parameter value"),
    pytest.param(damaged(lambda s: (s["offset"].pop("bytes"), s["scale"].pop("bytes"))),
                 id="normalised column without statistics"),
    pytest.param(damaged(lambda s: s.update(feature_names_in="bytes")), id="names not a list"),
])
def test_a_damaged_state_is_one_line_data_error(state):
    with pytest.raises(DataError) as caught:
        TrafficPreprocessor.from_dict(state)
    assert "\n" not in str(caught.value) and "preprocessor state" in str(caught.value)


def test_an_old_state_without_dropped_columns_still_loads():
    state = fitted_state()
    state.pop("dropped")
    assert TrafficPreprocessor.from_dict(state).dropped_ == []
