import numpy as np
import pandas as pd
import pytest

from fedfleet.errors import ConfigError, DataError
from fedfleet.traffic.classifiers import build_classifier
from fedfleet.traffic.model import TrafficModel, fit_model
from fedfleet.traffic.readers import filter_labels, read_flows, read_table
from fedfleet.traffic.schema import CIC_SPEC, NFSTREAM_SPEC, ColumnSpec, infer_spec, read_spec

SPEC = ColumnSpec(label="label", exclude=["src_ip"], ports=["src_port", "dst_port"],
                  categorical=["protocol"])
FAST_MLP = {"epochs": 40, "hidden": (16,), "batch_size": 32}


def fit(flows, classifier="tree", classifier_params=None, **kwargs):
    params = FAST_MLP if classifier == "mlp" else {}
    return fit_model(flows, SPEC, classifier, classifier_params=params | (classifier_params or {}), **kwargs)


@pytest.mark.parametrize("classifier", ["tree", "mlp"])
def test_separable_classes_are_learned_and_survive_save_and_load(flows, tmp_path, classifier):
    model = fit(flows, classifier, preprocessing={"port_mode": "bucket"})
    assert (model.predict(flows) == flows["label"]).mean() > 0.95
    assert "src_ip" not in model.features and "capture" not in model.features
    restored = TrafficModel.load(model.save(tmp_path / "model"))
    np.testing.assert_allclose(restored.predict_proba(flows), model.predict_proba(flows), atol=1e-6)
    assert restored.classes == ["DNS", "VoIP", "Web"] and restored.features == model.features


def test_mlp_is_deterministic_by_seed(flows):
    first = fit(flows, "mlp", random_state=3).predict_proba(flows)
    np.testing.assert_array_equal(first, fit(flows, "mlp", random_state=3).predict_proba(flows))
    assert not np.array_equal(first, fit(flows, "mlp", random_state=4).predict_proba(flows))


def test_unseen_categories_do_not_crash(flows):
    model = fit(flows)
    odd = flows.head(5).assign(proto_name="SCTP", protocol=132)
    assert len(model.predict(odd)) == 5


def test_schema_mismatch_names_the_columns(flows):
    model = fit(flows)
    renamed = flows.rename(columns={"bidirectional_bytes": "bytes"})
    with pytest.raises(DataError, match=r"missing bidirectional_bytes.*does not know: bytes"):
        model.predict(renamed)


def test_training_guards(flows):
    with pytest.raises(DataError, match="no label column"):
        fit_model(flows, SPEC.with_label(None).model_copy(update={"label": None}))
    with pytest.raises(DataError, match=r"lacks required column.*kind"):
        fit_model(flows, SPEC.with_label("kind"))
    with pytest.raises(DataError, match="two classes"):
        fit(flows[flows["label"] == "Web"])
    with pytest.raises(DataError, match="empty values"):
        fit(flows.assign(label=flows["label"].where(flows.index > 0)))
    with pytest.raises(ConfigError, match="unknown classifier"):
        build_classifier("forest")


def test_missing_model_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="not a traffic model folder"):
        TrafficModel.load(tmp_path)


def test_cicflowmeter_csv_with_infinity_and_spaced_names(tmp_path):
    rows = ["Flow ID, Source IP, Destination Port, Protocol, Flow Duration, Total Fwd Packets,"
            " Flow Bytes/s, Flow IAT Mean, Label"]
    for i in range(100):
        benign = i % 2 == 0
        rate = "Infinity" if i % 7 == 0 else ("NaN" if i % 11 == 0 else str(100 + i))
        rows.append(f"f{i}, 10.0.0.{i}, {80 if benign else 22}, 6, {1000 + i if i != 3 else -1},"
                    f" {5 if benign else 50}, {rate}, {10.0 * i}, {'BENIGN' if benign else 'SSH-Patator'}")
    path = tmp_path / "cic.csv"
    path.write_text("\n".join(rows) + "\n")
    flows, spec, extraction = read_flows([path])
    assert spec == CIC_SPEC and extraction is None and "Destination Port" in flows.columns
    model = fit_model(flows, spec)
    assert "Flow ID" not in model.features and "Source IP" not in model.features
    cleaned = model.transform(flows)
    invalid_rates = sum(i % 7 == 0 or i % 11 == 0 for i in range(100))
    assert np.isnan(cleaned[:, model.features.index("Flow Bytes/s")]).sum() == invalid_rates
    assert np.isnan(cleaned[3, model.features.index("Flow Duration")])
    assert (model.predict(flows) == flows["Label"]).mean() == 1.0


def test_table_and_spec_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_table(tmp_path / "empty.csv")
    with pytest.raises(DataError, match="not a flow table"):
        read_table(tmp_path / "flows.txt")
    (tmp_path / "spec.yaml").write_text("label: y\nportz: [a]\n")
    with pytest.raises(ConfigError, match="portz"):
        read_spec(tmp_path / "spec.yaml")


def test_infer_spec_and_filter_labels(flows):
    assert infer_spec(pd.DataFrame(columns=["bidirectional_packets", "src2dst_bytes"])) == NFSTREAM_SPEC
    # no built-in spec matches: roles guessed from the names (as SPEC declares them)
    assert infer_spec(flows) == ColumnSpec(exclude=["src_ip"], ports=["src_port", "dst_port"],
                                           categorical=["protocol"], labels=["label"])
    kept = filter_labels(flows.iloc[:-170], "label", drop=("DNS",), min_flows=3)
    assert "DNS" not in set(kept["label"]) and kept["label"].value_counts().min() >= 3
    with pytest.raises(DataError, match="no label column 'kind'"):
        filter_labels(flows, "kind")


def test_chunked_prediction_equals_one_pass(flows, monkeypatch):
    model = fit(flows)
    whole = model.predict_proba(flows)
    monkeypatch.setattr("fedfleet.traffic.model.PREDICT_CHUNK", 7)
    np.testing.assert_array_equal(model.predict_proba(flows), whole)
    assert model.predict(flows.iloc[:0]).shape == (0,)


@pytest.mark.parametrize("params", [{}, {"early_stopping": True, "max_iter": 30}])
def test_a_class_of_one_flow_trains_and_is_reported_too_small_to_validate(flows, params):
    rare = flows.copy()
    rare.loc[rare.index[:2], "label"] = ["Telnet", "SSH"]  # two classes of a single flow each
    model = fit(rare, classifier_params=params)
    assert {"Telnet", "SSH"} <= set(model.training["too_small_to_validate"])
    assert model.training["class_flows"]["SSH"] == 1 and model.classes[:2] == ["DNS", "SSH"]
    if params:  # early stopping held out a tenth of each large class; the rare ones are not validated
        held_out = model.training["validation_flows"]
        assert held_out == sum(int(n * 0.1) for n in rare["label"].value_counts())
        assert model.training["too_small_to_validate"] == ["SSH", "Telnet"]
    else:
        assert model.training["validation_flows"] == 0 and model.training["iterations"] == 100


def test_classifier_parameters_are_checked_before_training(flows):
    with pytest.raises(ConfigError, match=r"no parameter 'max_iters'; known: .*max_iter"):
        fit(flows, classifier_params={"max_iters": 3})
    with pytest.raises(ConfigError, match=r"'max_iter' parameter .* must be an int"):
        fit(flows, classifier_params={"max_iter": "many"})
    with pytest.raises(ConfigError, match="class weight for Mail: no training flow"):
        fit(flows, classifier_params={"class_weight": {"Mail": 2.0}})
    with pytest.raises(ConfigError, match="hidden must list positive"):
        fit(flows, "mlp", classifier_params={"hidden": [0]})
    with pytest.raises(ConfigError, match="lr"):
        fit(flows, "mlp", classifier_params={"lr": -1})
    for bad in ({"tol": float("inf")}, {"l2_regularization": float("nan")}, {"class_weight": {"Web": float("inf")}}):
        with pytest.raises(ConfigError, match="must be finite"):  # model.json holds no Infinity or NaN
            fit(flows, classifier_params=bad)
    with pytest.raises(ConfigError, match="categorical_features is not supported"):
        fit(flows, classifier_params={"categorical_features": [0]})


@pytest.mark.parametrize("classifier", ["tree", "mlp"])
def test_class_weight_shifts_predictions_towards_the_weighted_class(classifier):
    from .conftest import make_flows

    noisy = make_flows(rows_per_class=60, seed=3)
    noisy["bidirectional_bytes"] = np.random.default_rng(0).normal(1000, 10, len(noisy))
    noisy = noisy.drop(columns=["dst_port", "protocol", "proto_name", "bidirectional_packets",
                                "bidirectional_duration_ms", "src_port"])  # nothing tells classes apart
    spec = ColumnSpec(label="label", exclude=["src_ip"])
    params = FAST_MLP if classifier == "mlp" else {"max_iter": 20}
    plain = fit_model(noisy, spec, classifier, classifier_params=params).predict(noisy)
    weighted = fit_model(noisy, spec, classifier,
                         classifier_params=params | {"class_weight": {"VoIP": 50.0}}).predict(noisy)
    assert (weighted == "VoIP").mean() > max((plain == "VoIP").mean(), 0.9)


def test_a_column_dropped_in_training_may_be_absent_when_classifying(flows, tmp_path):
    model = fit(flows.assign(local_orig=np.nan))  # Zeek's unset local_orig: no valid value
    assert model.preprocessor.dropped_ == ["local_orig"]
    restored = TrafficModel.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(restored.predict_proba(flows), model.predict_proba(flows.assign(local_orig=1.0)))
    with pytest.raises(DataError, match="missing bidirectional_bytes"):
        restored.predict(flows.drop(columns=["bidirectional_bytes"]))


def test_numpy_parameters_are_saved_as_plain_numbers(flows, tmp_path):
    model = fit(flows, classifier_params={"max_iter": np.int64(12), "learning_rate": np.float32(0.25)})
    restored = TrafficModel.load(model.save(tmp_path / "m"))
    assert restored.classifier.max_iter == 12 and restored.classifier.learning_rate == 0.25
    np.testing.assert_array_equal(restored.predict_proba(flows), model.predict_proba(flows))
