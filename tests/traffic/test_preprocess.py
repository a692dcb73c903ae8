import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from fedfleet.errors import ConfigError, DataError
from fedfleet.traffic.preprocess import UNKNOWN_ID, TrafficPreprocessor, port_bucket


def fit_raw(frame, **params):
    """A preprocessor fitted without normalisation, so cleaned values can be read back."""
    params.setdefault("normalise", False)
    return TrafficPreprocessor(ports=("dst_port",), **params).fit(frame)


def column(pre, frame, name):
    return pre.transform(frame)[:, list(pre.get_feature_names_out()).index(name)]


def test_invalid_values_become_null():
    frame = pd.DataFrame({"bytes": ["10", "Infinity", "-Infinity", "NaN", "abc", "-5", "7"]})
    out = column(fit_raw(frame, numeric_threshold=0.5), frame, "bytes")
    np.testing.assert_array_equal(np.isnan(out), [False, True, True, True, True, True, False])
    assert out[0] == 10 and out[6] == 7


def test_negative_only_null_where_declared_impossible():
    frame = pd.DataFrame({"bytes": [5.0, -1.0], "offset": [5.0, -1.0]})
    pre = fit_raw(frame, non_negative=("bytes",))
    assert np.isnan(column(pre, frame, "bytes")[1])
    assert column(pre, frame, "offset")[1] == -1.0


def test_without_null_step_infinities_are_clipped_and_negatives_kept():
    frame = pd.DataFrame({"bytes": [np.inf, -np.inf, -3.0]})
    out = column(fit_raw(frame, null_invalid=False), frame, "bytes")
    assert np.isfinite(out).all() and out[2] == -3.0


def test_nominal_values_map_to_fitted_ids_with_unknown_reserved():
    train = pd.DataFrame({"proto_name": ["UDP", "TCP", "TCP", None]})
    pre = fit_raw(train)
    assert pre.categories_["proto_name"] == ["TCP", "UDP"]
    test = pd.DataFrame({"proto_name": ["TCP", "UDP", "SCTP", None]})
    out = column(pre, test, "proto_name")
    np.testing.assert_array_equal(out[:3], [1, 2, UNKNOWN_ID])
    assert np.isnan(out[3])


def test_declared_nominal_numbers_match_across_int_and_float_columns():
    pre = fit_raw(pd.DataFrame({"protocol": [6, 17, 6]}), categorical=("protocol",))
    as_float = pd.DataFrame({"protocol": [17.0, 6.0, 1.0, np.nan]})
    out = column(pre, as_float, "protocol")
    ids = {value: index + 1 for index, value in enumerate(pre.categories_["protocol"])}
    assert set(ids) == {"6", "17"}
    np.testing.assert_array_equal(out[:3], [ids["17"], ids["6"], UNKNOWN_ID])
    assert np.isnan(out[3])


def test_invalid_nominal_numbers_become_null_not_categories():
    frame = pd.DataFrame({"protocol": [6, 17, np.inf, -1]})
    pre = fit_raw(frame, categorical=("protocol",))
    assert pre.categories_["protocol"] == ["17", "6"]
    np.testing.assert_array_equal(np.isnan(column(pre, frame, "protocol")), [False, False, True, True])
    # invalid values first seen at transform time are null too, not the unknown id
    later = column(pre, pd.DataFrame({"protocol": [-np.inf, -6.0, 6.0]}), "protocol")
    np.testing.assert_array_equal(np.isnan(later), [True, True, False])


def test_missing_and_invalid_text_in_nominal_columns_becomes_null():
    frame = pd.DataFrame({"proto_name": ["TCP", "NaN", "null", " none ", "N/A", "UDP"],
                          "protocol": ["6", "17.0", "Infinity", "-1", "nan", "6"]})
    pre = fit_raw(frame, categorical=("protocol",))
    assert pre.categories_ == {"proto_name": ["TCP", "UDP"], "protocol": ["17", "6"]}
    out = pre.transform(frame)
    names = list(pre.get_feature_names_out())
    np.testing.assert_array_equal(np.isnan(out[:, names.index("proto_name")]),
                                  [False, True, True, True, True, False])
    np.testing.assert_array_equal(np.isnan(out[:, names.index("protocol")]),
                                  [False, False, True, True, True, False])


def test_nominal_numbers_written_as_text_match_the_fitted_numbers():
    pre = fit_raw(pd.DataFrame({"protocol": [6, 17]}), categorical=("protocol",))
    out = column(pre, pd.DataFrame({"protocol": ["17.0", " 6", "1"]}), "protocol")
    ids = {value: index + 1 for index, value in enumerate(pre.categories_["protocol"])}
    np.testing.assert_array_equal(out, [ids["17"], ids["6"], UNKNOWN_ID])


def test_negative_nominal_values_kept_where_not_declared_impossible_and_without_step_one():
    frame = pd.DataFrame({"code": [-1, 3, np.inf]})
    declared = fit_raw(frame, categorical=("code",), non_negative=("bytes",))
    assert declared.categories_["code"] == ["-1", "3"]  # a negative code may be legitimate here
    ablation = fit_raw(frame, categorical=("code",), null_invalid=False)
    assert ablation.categories_["code"] == ["-1", "3", "inf"]


def test_without_encoding_text_columns_are_dropped():
    frame = pd.DataFrame({"proto_name": ["TCP", "UDP"], "bytes": [1.0, 2.0]})
    pre = fit_raw(frame, encode_categorical=False)
    assert list(pre.get_feature_names_out()) == ["bytes"]


def test_mostly_numeric_text_column_is_numeric_with_unparsable_values_null():
    frame = pd.DataFrame({"rate": ["1", "2", "3", "4", "5", "6", "7", "8", "9", "oops"]})
    pre = fit_raw(frame)
    assert pre.kinds_["rate"] == "numeric"
    assert np.isnan(column(pre, frame, "rate")[-1])


def test_ports_stay_integers_and_are_never_normalised():
    frame = pd.DataFrame({"dst_port": [443, 53, 8080], "bytes": [1.0, 2.0, 3.0]})
    pre = TrafficPreprocessor(ports=("dst_port",)).fit(frame)
    np.testing.assert_array_equal(column(pre, frame, "dst_port"), [443, 53, 8080])
    assert column(pre, frame, "bytes").mean() == pytest.approx(0.0, abs=1e-6)


def test_invalid_ports_become_null():
    frame = pd.DataFrame({"dst_port": [80.0, -1.0, 70000.0, 80.5]})
    out = column(fit_raw(frame), frame, "dst_port")
    np.testing.assert_array_equal(np.isnan(out), [False, True, True, True])


def test_port_buckets():
    out = port_bucket(np.array([0.0, 1023, 1024, 49151, 49152, 65535, np.nan]))
    np.testing.assert_array_equal(out[:6], [0, 0, 1, 1, 2, 2])
    assert np.isnan(out[6])


def test_normalised_ports_are_scaled_in_the_ablation():
    frame = pd.DataFrame({"dst_port": [443, 53, 8080]})
    pre = TrafficPreprocessor(ports=("dst_port",), port_mode="normalise").fit(frame)
    assert column(pre, frame, "dst_port").mean() == pytest.approx(0.0, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(np.inf), st.just(-np.inf), st.just(np.nan)),
                min_size=3, max_size=40),
       st.sampled_from(["standard", "minmax", "log-standard"]))
def test_output_is_finite_or_null_exactly_where_input_was_invalid(values, scaling):
    assume(any(np.isfinite(value) and value >= 0 for value in values))  # else dropped, tested below
    frame = pd.DataFrame({"bytes": values})
    out = TrafficPreprocessor(ports=(), scaling=scaling).fit(frame).transform(frame)[:, 0]
    raw = np.asarray(values)
    invalid = ~np.isfinite(raw) | (raw < 0)
    np.testing.assert_array_equal(np.isnan(out), invalid)
    assert np.isfinite(out[~invalid]).all()


def test_a_subnormal_spread_and_far_unseen_values_stay_finite():
    # the squared deviations of subnormal values underflow to 0: no division by zero
    pre = TrafficPreprocessor(ports=()).fit(pd.DataFrame({"bytes": [0.0, 0.0, 2.2250738585e-313]}))
    far = pre.transform(pd.DataFrame({"bytes": [0.0, 1e300]}))[:, 0]
    assert np.isfinite(far).all()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0, 1e6), min_size=2, max_size=50))
def test_training_columns_are_standardised_or_in_unit_range(values):
    frame = pd.DataFrame({"bytes": values})
    standard = TrafficPreprocessor(ports=()).fit_transform(frame)[:, 0].astype(float)
    assert standard.mean() == pytest.approx(0.0, abs=1e-3)
    minmax = TrafficPreprocessor(ports=(), scaling="minmax").fit_transform(frame)[:, 0]
    assert minmax.min() >= -1e-6 and minmax.max() <= 1 + 1e-6


@pytest.mark.parametrize("scaling", ["standard", "minmax", "log-standard"])
def test_a_constant_column_maps_to_zero_and_stays_finite(scaling):
    # float moments of a constant column carry rounding noise; it must not become a tiny scale
    train = pd.DataFrame({"bytes": [349525.975] * 3})
    pre = TrafficPreprocessor(ports=(), scaling=scaling).fit(train)
    np.testing.assert_array_equal(pre.transform(train)[:, 0], 0.0)
    shifted = pre.transform(pd.DataFrame({"bytes": [349526.975]}))[0, 0]
    assert np.isfinite(shifted) and abs(shifted) <= 1.0


def test_estimator_contract(flows):
    pre = TrafficPreprocessor(categorical=("protocol",), port_mode="bucket")
    assert clone(pre).get_params() == pre.get_params()
    with pytest.raises(NotFittedError):
        pre.transform(flows)
    assert pre.fit(flows.drop(columns=["label"])) is pre
    assert not hasattr(TrafficPreprocessor(), "kinds_")


def test_missing_column_is_named(flows):
    pre = TrafficPreprocessor().fit(flows[["dst_port", "bidirectional_bytes"]])
    with pytest.raises(DataError, match="bidirectional_bytes"):
        pre.transform(flows[["dst_port"]])


def test_rejects_bad_settings_and_non_frames(flows):
    with pytest.raises(ConfigError, match="port_mode"):
        TrafficPreprocessor(port_mode="hash").fit(flows)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="DataFrame"):
        TrafficPreprocessor().fit(flows.to_numpy())


def test_state_round_trips_through_json(flows):
    features = flows.drop(columns=["label", "capture"])
    pre = TrafficPreprocessor(categorical=("protocol",), scaling="log-standard").fit(features)
    restored = TrafficPreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(restored.transform(features), pre.transform(features))
    assert restored.get_params() == pre.get_params()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="abcXYZ-_ ", min_size=1, max_size=4), min_size=1, max_size=30),
       st.lists(st.text(alphabet="abcdXYZ", min_size=1, max_size=4), min_size=1, max_size=30))
def test_seen_values_get_distinct_ids_and_unseen_get_the_unknown_id(train_values, test_values):
    assume(any(value.strip() for value in train_values))  # an all-empty column is dropped
    train = pd.DataFrame({"name": train_values})
    pre = TrafficPreprocessor(ports=(), categorical=("name",), normalise=False).fit(train)
    seen = {value.strip() for value in train_values} - {""}
    ids = pre.transform(train)[:, 0]
    by_value = {v.strip(): i for v, i in zip(train_values, ids, strict=True) if v.strip()}
    assert sorted(by_value.values()) == sorted(set(by_value.values()))
    assert set(by_value.values()) == set(range(1, len(seen) + 1))
    test_ids = pre.transform(pd.DataFrame({"name": test_values}))[:, 0]
    for value, code in zip(test_values, test_ids, strict=True):
        assert code == by_value.get(value, UNKNOWN_ID)
