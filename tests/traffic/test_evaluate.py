import pytest

from fedfleet.errors import DataError
from fedfleet.traffic.evaluate import capture_split, classification_metrics, random_split


def test_metrics_on_a_known_example():
    metrics = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "c"])
    assert metrics["accuracy"] == 0.5
    assert metrics["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3),
                                         "support": 2}
    assert metrics["per_class"]["b"]["precision"] == 0.5
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)
    assert metrics["confusion"] == {"labels": ["a", "b", "c"], "matrix": [[1, 1, 0], [0, 1, 1], [0, 0, 0]]}


def test_one_class_scores_without_a_warning(recwarn):
    metrics = classification_metrics(["Web"], ["Web"])
    assert metrics["confusion"] == {"labels": ["Web"], "matrix": [[1]]} and metrics["accuracy"] == 1.0
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_capture_split_keeps_each_capture_on_one_side(flows):
    train, test = capture_split(flows, test_size=0.34, random_state=1)
    assert set(train["capture"]).isdisjoint(test["capture"])
    assert len(train) + len(test) == len(flows)


def test_random_split_is_stratified_and_seeded(flows):
    _, test = random_split(flows, "label", test_size=0.25, random_state=0)
    assert test["label"].value_counts().to_dict() == {"Web": 15, "VoIP": 15, "DNS": 15}
    assert random_split(flows, "label", random_state=0)[1].index.equals(test.index)


def test_capture_split_needs_captures(flows):
    with pytest.raises(DataError, match="'capture' column"):
        capture_split(flows.drop(columns=["capture"]))
    with pytest.raises(DataError, match="at least two"):
        capture_split(flows.assign(capture="one.pcap"))


def test_refit_keeps_the_recipe_and_a_capture_split_scores_unseen_captures(flows):
    from fedfleet.traffic.evaluate import evaluate_on_split
    from fedfleet.traffic.model import fit_model
    from fedfleet.traffic.schema import ColumnSpec

    spec = ColumnSpec(label="label", exclude=["src_ip"], ports=["src_port", "dst_port"], categorical=["protocol"])
    model = fit_model(flows, spec, "tree", {"port_mode": "bucket"}, {"max_iter": 20})
    train, test = capture_split(flows, 0.34, 1)
    refitted = model.refit(train)
    assert refitted.preprocessor.port_mode == "bucket" and refitted.classifier.max_iter == 20
    assert refitted.features == model.features and refitted is not model
    result = evaluate_on_split(model, flows, "capture", "label", 0.34, 1)
    assert result["test_flows"] == len(test) and result["test_captures"] == test["capture"].nunique()
    assert result["accuracy"] == classification_metrics(test["label"], refitted.predict(test))["accuracy"]


def test_random_split_keeps_one_flow_classes_for_training_and_stratifies_the_rest(flows):
    rare = flows.copy()
    rare.loc[rare.index[:2], "label"] = ["Telnet", "SSH"]
    train, test = random_split(rare, "label", test_size=0.25, random_state=0)
    assert {"Telnet", "SSH"} <= set(train["label"]) and not {"Telnet", "SSH"} & set(test["label"])
    assert len(train) + len(test) == len(rare) and set(train.index).isdisjoint(test.index)
    counts = test["label"].value_counts()
    assert counts.max() - counts.min() <= 1  # the three large classes stay balanced
    with pytest.raises(DataError, match="every class of 'label' has one"):
        random_split(rare.iloc[:2], "label")
