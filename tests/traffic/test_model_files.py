"""Model folders hold no code: a loaded model predicts exactly as the fitted one, and every
crafted, damaged or hand-edited folder is refused with one line (exit code 2), code never run."""

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from fedfleet.cli.main import main
from fedfleet.errors import DataError
from fedfleet.traffic.model import TrafficModel, fit_model
from fedfleet.traffic.schema import ColumnSpec

from .conftest import make_flows

SPEC = ColumnSpec(label="label", exclude=["src_ip"], ports=["src_port", "dst_port"], categorical=["protocol"])
FAST_MLP = {"epochs": 5, "hidden": [16]}
MARKER_ENV = "FEDFLEET_TEST_PAYLOAD_MARKER"


class Payload:
    """Pickles into a call that creates the marker file: proof that loading ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tree and an MLP model folder and the flows they were trained on."""
    root = tmp_path_factory.mktemp("models")
    flows = make_flows(rows_per_class=40)
    paths = {}
    for name, params in (("tree", {"max_iter": 20}), ("mlp", FAST_MLP)):
        paths[name] = fit_model(flows, SPEC, name, classifier_params=params).save(root / name)
    flows_csv = root / "flows.csv"
    flows.to_csv(flows_csv, index=False)
    return paths, flows_csv


@pytest.mark.parametrize("classifier", ["tree", "mlp"])
def test_a_loaded_model_predicts_bit_for_bit(tmp_path, classifier):
    flows = make_flows()
    params = {"max_iter": 30} if classifier == "tree" else FAST_MLP
    model = fit_model(flows, SPEC, classifier, classifier_params=params)
    restored = TrafficModel.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(restored.predict_proba(flows), model.predict_proba(flows))
    assert restored.training == model.training and restored.training["flows"] == len(flows)
    assert restored.classifier.get_params() == model.classifier.get_params()
    assert not list(tmp_path.glob("m/*.joblib")) and not list(tmp_path.glob("m/*.pkl"))


def test_a_loaded_tree_predicts_real_captures_bit_for_bit(tmp_path, pcap_dir):
    """Real nDPI labels, every class kept (one-flow classes too) and early stopping on."""
    from fedfleet.traffic.readers import read_flows

    flows, spec, _ = read_flows(sorted(pcap_dir.glob("*.pcap"))[:40])
    counts = flows[spec.label].value_counts()
    assert (counts == 1).any()  # the case that broke scikit-learn's stratified split
    model = fit_model(flows, spec, "tree", classifier_params={"max_iter": 30, "early_stopping": True})
    restored = TrafficModel.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(restored.predict_proba(flows), model.predict_proba(flows))
    too_small = set(model.training["too_small_to_validate"])
    assert set(counts[counts < 10].index) == too_small and model.training["validation_flows"] > 0
    np.testing.assert_array_equal(restored.classifier.validation_score_, model.classifier.validation_score_)


def _write_tensors(path: Path, change) -> None:
    arrays = load_file(str(path))
    change(arrays)
    save_file(arrays, str(path))


def _backward_child(arrays):
    inner = np.flatnonzero(arrays["nodes.is_leaf"] == 0)
    arrays["nodes.left"][inner[1]] = 0  # a cycle: traversal would never end


def _pickle_as(name: str):
    def write(folder: Path, marker: Path) -> None:
        (folder / name).write_bytes(pickle.dumps(Payload(marker)))
    return write


def _edit_json(name: str, change):
    def write(folder: Path, marker: Path) -> None:
        data = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps(change(data)))
    return write


def _tensors(change):
    return lambda folder, marker: _write_tensors(folder / "classifier.safetensors", change)


def _bytes(name: str, content: bytes):
    return lambda folder, marker: (folder / name).write_bytes(content)


def _truncate(folder: Path, marker: Path) -> None:
    weights = folder / "classifier.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])


def _old_joblib_folder(folder: Path, marker: Path) -> None:
    (folder / "classifier.safetensors").unlink()
    _pickle_as("classifier.joblib")(folder, marker)
    _edit_json("model.json", lambda meta: meta | {"format_version": 1})(folder, marker)


CASES = [  # (name, classifier, damage, expected message)
    ("pickle payload in an old joblib folder", "tree", _old_joblib_folder, "model format 1 is not 2"),
    ("pickle payload named safetensors", "tree", _pickle_as("classifier.safetensors"), "not safetensors"),
    ("pickle payload in MLP weights", "mlp", _pickle_as("classifier.safetensors"), "not safetensors"),
    ("truncated weights", "tree", _truncate, "corrupt or not safetensors"),
    ("garbage weights", "mlp", _bytes("classifier.safetensors", os.urandom(4096)), "corrupt or not safetensors"),
    ("empty weights", "tree", _bytes("classifier.safetensors", b""), "corrupt or not safetensors"),
    ("missing weights", "tree", lambda folder, marker: (folder / "classifier.safetensors").unlink(),
     "no classifier.safetensors"),
    ("child pointing back", "tree", _tensors(_backward_child), "points outside its tree"),
    ("child out of range", "tree", _tensors(lambda a: a["nodes.right"].__setitem__(0, 10**9)),
     "points outside its tree"),
    ("feature out of range", "tree", _tensors(lambda a: a["nodes.feature_idx"].__setitem__(0, 999)),
     "points outside its tree"),
    ("wrong field dtype", "tree", _tensors(lambda a: a.__setitem__("nodes.left", a["nodes.left"].astype(np.int64))),
     "node field 'left' must be uint32"),
    ("missing field", "tree", _tensors(lambda a: a.pop("nodes.gain")), "missing nodes.gain"),
    ("tree sizes", "tree", _tensors(lambda a: a["tree_sizes"].__setitem__(0, 0)), "tree_sizes"),
    ("baseline shape", "tree", _tensors(lambda a: a.__setitem__("baseline", np.zeros((1, 2)))), "baseline"),
    ("infinite leaf", "tree", _tensors(lambda a: a["nodes.value"].__setitem__(-1, np.inf)), "non-finite"),
    ("MLP widths edited", "mlp", _edit_json("model.json", lambda m: m | {
        "classifier_params": m["classifier_params"] | {"hidden": [8]}}), "weights do not fit"),
    ("MLP widths huge", "mlp", _edit_json("model.json", lambda m: m | {  # refused before any network is built
        "classifier_params": m["classifier_params"] | {"hidden": [10**9, 10**9]}}), "weights do not fit"),
    ("manifest is a list", "tree", _edit_json("model.json", lambda m: [m]), "model format None"),
    ("manifest binary", "tree", _bytes("model.json", b"\xff\xfe\x00garbage"), "corrupt model file"),
    ("manifest truncated", "tree", _bytes("model.json", b'{"format_version": 2, "classes'), "corrupt model file"),
    ("manifest unknown key", "tree", _edit_json("model.json", lambda m: m | {"extra": 1}), "extra"),
    ("manifest classifier", "tree", _edit_json("model.json", lambda m: m | {"classifier": "forest"}), "classifier"),
    ("manifest classes order", "tree", _edit_json("model.json", lambda m: m | {"classes": m["classes"][::-1]}),
     "distinct and sorted"),
    ("manifest one class", "tree", _edit_json("model.json", lambda m: m | {"classes": ["Web"]}), "classes"),
    ("manifest features", "tree", _edit_json("model.json", lambda m: m | {"features": m["features"][:-1]}),
     "different feature columns"),
    ("manifest unknown param", "tree", _edit_json("model.json", lambda m: m | {
        "classifier_params": m["classifier_params"] | {"n_trees": 3}}), "no parameter 'n_trees'"),
    ("manifest bad param", "tree", _edit_json("model.json", lambda m: m | {
        "classifier_params": m["classifier_params"] | {"max_iter": 0}}), "max_iter"),
    ("preprocessor edited", "tree", _edit_json("preprocessor.json", lambda state: state | {"kinds": 3}),
     "preprocessor"),
]


@pytest.mark.parametrize(("classifier", "damage", "message"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_a_crafted_or_damaged_model_folder_is_one_line(saved, tmp_path, capsys, classifier, damage, message):
    paths, flows_csv = saved
    folder = Path(shutil.copytree(paths[classifier], tmp_path / "model"))
    marker = tmp_path / "payload-ran"
    damage(folder, marker)
    with pytest.raises(DataError, match=message):
        TrafficModel.load(folder)
    for command in (["classify", str(folder), str(flows_csv)],
                    ["evaluate", str(folder), str(flows_csv), "--label", "label"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["traffic", *command])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not marker.exists()


def test_a_model_folder_that_is_a_file_is_one_line(saved, tmp_path, capsys):
    _, flows_csv = saved
    with pytest.raises(SystemExit) as exit_info:
        main(["traffic", "classify", str(flows_csv), str(flows_csv)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "is a file, not a traffic model folder" in err
