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
