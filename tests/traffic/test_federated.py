import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from fedfleet.config import load_config
from fedfleet.errors import DataError
from fedfleet.traffic.evaluate import capture_split
from fedfleet.traffic.federated import fit_preprocessor_federated, train_federated
from fedfleet.traffic.model import TrafficModel
from fedfleet.traffic.preprocess import Moments, TrafficPreprocessor

from .test_model import SPEC

CONFIG = {"seed": 0, "train": {"rounds": 8, "clients_per_round": 3, "local_epochs": 2,
                               "batch_size": 16, "lr": 0.1},
          "fleet": {"profile": "uniform"}, "checkpoint_every": 0}


def run(flows, seed=0, **overrides):
    config = load_config({**CONFIG, "seed": seed, "data": {"num_clients": 6}})
    train, test = capture_split(flows, test_size=0.34, random_state=0)
    return train, test, train_federated(train, test, SPEC, config, **overrides)


def test_each_capture_is_a_client_and_the_model_learns(flows, tmp_path):
    train, test, result = run(flows)
    assert sorted(result.client_sizes) == sorted(train["capture"].value_counts().tolist())
    assert (result.model.predict(test) == test["label"]).mean() > 0.95
    assert result.run.summary["rounds"] == 8
    restored = TrafficModel.load(result.model.save(tmp_path / "fed"))
    np.testing.assert_allclose(restored.predict_proba(test), result.model.predict_proba(test), atol=1e-6)


def without_wall_time(history):
    return [{key: value for key, value in record.items() if key != "wall_time_s"} for record in history]


def test_same_seed_same_run(flows):
    first, again = run(flows, seed=1)[2], run(flows, seed=1)[2]
    assert without_wall_time(first.run.history) == without_wall_time(again.run.history)
    assert without_wall_time(first.run.history) != without_wall_time(run(flows, seed=2)[2].run.history)


def test_needs_a_site_column(flows):
    config = load_config({**CONFIG, "data": {"num_clients": 6}})
    with pytest.raises(DataError, match="'site' column"):
        train_federated(flows, flows, SPEC, config, site="site")


def test_a_custom_site_column_is_not_a_feature(flows):
    config = load_config({**CONFIG, "data": {"num_clients": 6}})
    sites = flows.assign(site=flows["capture"].str[:2])
    result = train_federated(sites, flows, SPEC, config, site="site")
    assert "site" not in result.model.features and len(result.client_sizes) == 6


def test_preprocessor_from_site_summaries_equals_the_pooled_fit(flows):
    features = flows.drop(columns=["label", "capture", "src_ip"])
    template = TrafficPreprocessor(ports=("src_port", "dst_port"), categorical=("protocol", "proto_name"))
    sites = [features[flows["capture"] == name] for name in sorted(flows["capture"].unique())]
    sites[0] = sites[0].assign(proto_name="SCTP")  # a category only one site has seen
    federated = fit_preprocessor_federated(template, sites)
    pooled = clone(template).fit(pd.concat(sites))
    assert federated.categories_ == pooled.categories_
    assert federated.offset_ == pytest.approx(pooled.offset_)
    assert federated.scale_ == pytest.approx(pooled.scale_)
    np.testing.assert_allclose(federated.transform(features), pooled.transform(features), rtol=1e-5)


def test_sites_that_disagree_on_a_column_kind_are_refused():
    numbers = pd.DataFrame({"flag": ["1", "2", "3"]})
    words = pd.DataFrame({"flag": ["syn", "ack", "fin"]})
    with pytest.raises(DataError, match=r"disagree on the kind of column.*flag"):
        fit_preprocessor_federated(TrafficPreprocessor(ports=()), [numbers, words])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=0, max_size=20),
       st.lists(st.floats(-1e6, 1e6), min_size=0, max_size=20))
def test_moments_of_parts_add_up_to_the_moments_of_the_whole(first, second):
    whole = Moments.of(np.asarray(first + second, dtype=float))
    summed = Moments.of(np.asarray(first, dtype=float)) + Moments.of(np.asarray(second, dtype=float))
    assert summed.count == whole.count and (summed.low, summed.high) == (whole.low, whole.high)
    assert summed.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-6)
    assert summed.m2 == pytest.approx(whole.m2, rel=1e-7, abs=1e-3)
