import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from fedfleet.cli.main import _register_commands, app

from .conftest import make_flows


@pytest.fixture(scope="module")
def runner():
    _register_commands()
    return CliRunner()


def invoke(runner, *args):
    return runner.invoke(app, ["traffic", *map(str, args)])


def test_train_classify_evaluate(runner, tmp_path):
    flows = tmp_path / "flows.csv"
    make_flows().to_csv(flows, index=False)
    model = tmp_path / "model"
    trained = invoke(runner, "train", flows, "--label", "label", "--out", model, "--format", "json")
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["classes"] == ["DNS", "VoIP", "Web"]
    predictions = tmp_path / "predictions.csv"
    assert invoke(runner, "classify", model, flows, "--out", predictions).exit_code == 0
    table = pd.read_csv(predictions)
    assert list(table.columns) == ["src_ip", "src_port", "dst_port", "protocol", "capture",
                                   "predicted", "probability"]
    plot = tmp_path / "confusion.png"
    evaluated = invoke(runner, "evaluate", model, flows, "--label", "label", "--plot", plot,
                       "--format", "json")
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)
    assert metrics["accuracy"] > 0.95 and set(metrics["per_class"]) == {"DNS", "VoIP", "Web"}
    assert plot.stat().st_size > 0


def test_missing_label_and_schema_mismatch_are_one_line_errors(runner, tmp_path):
    flows = tmp_path / "flows.csv"
    make_flows().to_csv(flows, index=False)
    result = invoke(runner, "train", flows, "--label", "kind", "--out", tmp_path / "m")
    assert result.exit_code != 0 and "kind" in str(result.exception)
    assert invoke(runner, "train", flows, "--label", "label", "--out", tmp_path / "m").exit_code == 0
    other = tmp_path / "other.csv"
    make_flows().drop(columns=["dst_port"]).to_csv(other, index=False)
    result = invoke(runner, "classify", tmp_path / "m", other)
    assert "missing dst_port" in str(result.exception)


def test_extract_reports_failing_capture_and_writes_the_rest(runner, tmp_path, pcap_dir):
    out = tmp_path / "flows.parquet"
    result = invoke(runner, "extract", pcap_dir / "443-chrome.pcap", pcap_dir / "someip_sd_sample.pcap",
                    "--out", out, "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["failed_captures"] == 1 and summary["captures"] == 1
    assert "someip_sd_sample.pcap: no IP flows" in result.stderr
    assert len(pd.read_parquet(out)) == summary["flows"]


def test_cli_errors_exit_with_code_two(tmp_path, capsys):
    from fedfleet.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["traffic", "evaluate", str(tmp_path), str(tmp_path / "f.csv"), "--label", "y"])
    assert exit_info.value.code == 2
    assert "not a traffic model folder" in capsys.readouterr().err


@pytest.mark.parametrize(("classifier", "port_kind"), [("tree", "port"), ("mlp", "numeric")])
def test_default_port_handling_depends_on_the_classifier(runner, tmp_path, classifier, port_kind):
    flows = tmp_path / "flows.csv"
    make_flows(rows_per_class=20).to_csv(flows, index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text("ports: [src_port, dst_port]\ncategorical: [protocol]\nexclude: [src_ip]\n")
    model = tmp_path / "model"
    result = invoke(runner, "train", flows, "--label", "label", "--out", model, "--classifier", classifier,
                    "--spec", spec)
    assert result.exit_code == 0, result.output
    state = json.loads((model / "preprocessor.json").read_text())
    assert state["kinds"]["dst_port"] == port_kind


def test_a_table_without_spec_gets_ports_and_addresses_from_their_names(runner, tmp_path):
    flows = tmp_path / "flows.csv"
    make_flows(rows_per_class=20).to_csv(flows, index=False)
    model = tmp_path / "model"
    result = invoke(runner, "train", flows, "--label", "label", "--out", model)
    assert result.exit_code == 0, result.output
    assert "no --spec given" in result.stderr and "src_ip" in result.stderr
    state = json.loads((model / "preprocessor.json").read_text())
    assert state["kinds"]["src_port"] == state["kinds"]["dst_port"] == "port"  # not normalised
    assert "src_ip" not in state["feature_names_in"] and state["kinds"]["protocol"] == "categorical"
    spec = tmp_path / "spec.yaml"
    spec.write_text("exclude: [src_ip]\n")
    result = invoke(runner, "train", flows, "--label", "label", "--out", model, "--spec", spec)
    assert result.exit_code == 0 and "no --spec given" not in result.stderr


def test_evaluate_on_a_random_and_a_capture_split(runner, tmp_path):
    flows = tmp_path / "flows.csv"
    make_flows().to_csv(flows, index=False)
    model = tmp_path / "model"
    assert invoke(runner, "train", flows, "--label", "label", "--out", model).exit_code == 0
    plot = tmp_path / "confusion.png"
    result = invoke(runner, "evaluate", model, flows, "--label", "label", "--split", "both", "--plot", plot,
                    "--format", "json")
    assert result.exit_code == 0, result.output
    splits = json.loads(result.stdout)
    assert set(splits) == {"random", "capture"}
    assert splits["random"]["test_flows"] == 45 and splits["random"]["train_flows"] == 135
    capture = splits["capture"]
    assert capture["train_captures"] + capture["test_captures"] == capture["captures"] == 6
    assert all(metrics["accuracy"] > 0.9 for metrics in splits.values())
    assert all(metrics["too_small_to_validate"] == [] for metrics in splits.values())
    assert (tmp_path / "confusion-random.png").stat().st_size > 0
    assert (tmp_path / "confusion-capture.png").stat().st_size > 0
    text = invoke(runner, "evaluate", model, flows, "--label", "label", "--split", "capture", "--seed", 1)
    assert text.exit_code == 0 and "capture split" in text.stdout and "held-out flows" in text.stdout


@pytest.mark.parametrize(("extra", "message"), [
    (["--split", "halves"], "--split must be random, capture or both"),
    (["--seed", "3"], "apply only with --split"),
    (["--split", "capture", "--group", "site"], "'site' column"),
])
def test_evaluate_split_errors_exit_with_code_two(runner, tmp_path, capsys, extra, message):
    from fedfleet.cli.main import main

    flows = tmp_path / "flows.csv"
    make_flows(rows_per_class=20).to_csv(flows, index=False)
    assert invoke(runner, "train", flows, "--label", "label", "--out", tmp_path / "m").exit_code == 0
    with pytest.raises(SystemExit) as exit_info:
        main(["traffic", "evaluate", str(tmp_path / "m"), str(flows), "--label", "label", *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_traffic_extra_is_named(runner, tmp_path, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("pyarrow", "nfstream") else real_find_spec(name, *a))
    result = invoke(runner, "train", tmp_path / "f.csv", "--label", "y", "--out", tmp_path / "m")
    assert "pip install 'fedfleet[traffic]'" in str(result.exception)
    assert "pyarrow" in str(result.exception)
    from fedfleet.errors import DataError
    from fedfleet.traffic.extract import extract_flows

    with pytest.raises(DataError, match="needs nfstream"):
        extract_flows([tmp_path])


@pytest.fixture(scope="module")
def trained(runner, tmp_path_factory):
    """A flow table and a tree trained on it."""
    root = tmp_path_factory.mktemp("trained")
    flows = root / "flows.csv"
    make_flows(rows_per_class=20).to_csv(flows, index=False)
    result = CliRunner().invoke(app, ["traffic", "train", str(flows), "--label", "label", "--out", str(root / "m"),
                                      "--classifier-param", "max_iter=10"])
    assert result.exit_code == 0, result.output
    return root


def _duplicate_names(root):
    path = root / "dup.csv"
    path.write_text("label,bytes ,bytes\nWeb,1,2\nDNS,3,4\n")
    return path


BAD_INPUTS = [  # (name, arguments with {root} for the fixture's folder, expected message)
    ("train --out an existing file", ["train", "{root}/flows.csv", "--label", "label", "--out", "{root}/flows.csv"],
     "is a file, not a folder"),
    ("train --out under a file", ["train", "{root}/flows.csv", "--label", "label", "--out", "{root}/flows.csv/m"],
     "is a file, not a folder"),
    ("train --out a folder of other files", ["train", "{root}/flows.csv", "--label", "label", "--out", "{root}"],
     "holds files that are not a traffic model's ("),
    ("extract --out a folder", ["extract", "{root}/x.pcap", "--out", "{root}/m"], "is a folder"),
    ("extract --out .xlsx", ["extract", "{root}/x.pcap", "--out", "{root}/flows.xlsx"], "not '.xlsx'"),
    ("classify --out /dev/full", ["classify", "{root}/m", "{root}/flows.csv", "--out", "/dev/full"],
     "cannot write /dev/full: No space left on device"),
    ("classify a model that is a file", ["classify", "{root}/flows.csv", "{root}/flows.csv"],
     "is a file, not a traffic model folder"),
    ("duplicate names after stripping", ["train", "{root}/dup.csv", "--label", "label", "--out", "{root}/d"],
     "bytes"),
    ("unknown classifier parameter", ["train", "{root}/flows.csv", "--label", "label", "--out", "{root}/p",
                                      "--classifier-param", "depth=3"], "no parameter 'depth'; known:"),
    ("bad classifier parameter value", ["train", "{root}/flows.csv", "--label", "label", "--out", "{root}/p",
                                        "--classifier-param", "learning_rate=-1"], "'learning_rate' parameter"),
    ("classifier parameter without =", ["train", "{root}/flows.csv", "--label", "label", "--out", "{root}/p",
                                        "--classifier-param", "max_iter"], "is not KEY=VALUE"),
    ("MLP parameter given to the tree", ["train", "{root}/flows.csv", "--label", "label", "--out", "{root}/p",
                                         "--classifier-param", "epochs=3"], "no parameter 'epochs'"),
    ("bad class weight", ["train", "{root}/flows.csv", "--label", "label", "--out", "{root}/p",
                          "--class-weight", "Web=heavy"], "--class-weight"),
    ("class weight of an absent label", ["train", "{root}/flows.csv", "--label", "label", "--out", "{root}/p",
                                         "--class-weight", "Mail=2"], "class weight for Mail"),
    ("class weight given twice", ["train", "{root}/flows.csv", "--label", "label", "--out", "{root}/p",
                                  "--class-weight", "balanced", "--classifier-param", "class_weight=balanced"],
     "give the class weight once"),
    ("--split both without captures", ["evaluate", "{root}/m", "{root}/nocapture.csv", "--label", "label",
                                       "--split", "both"], "'capture' column"),
    ("--plot a folder", ["evaluate", "{root}/m", "{root}/flows.csv", "--label", "label", "--plot", "{root}"],
     "is a folder"),
    ("--plot a format matplotlib lacks", ["evaluate", "{root}/m", "{root}/flows.csv", "--label", "label",
                                          "--plot", "{root}/cm.txt"], "not '.txt'"),
    ("--plot /dev/full", ["evaluate", "{root}/m", "{root}/flows.csv", "--label", "label", "--plot", "/dev/full"],
     "cannot write or read /dev/full: No space left on device"),
    ("classify --out .xlsx", ["classify", "{root}/m", "{root}/flows.csv", "--out", "{root}/p.xlsx"],
     "predictions are written as CSV"),
    ("evaluate with every label empty", ["evaluate", "{root}/m", "{root}/nolabel.csv", "--label", "label"],
     "has a label in column 'label'"),
    ("train on a table of labels only", ["train", "{root}/labels.csv", "--label", "label", "--out", "{root}/l"],
     "no feature column"),
    ("extract of one damaged capture", ["extract", "{root}/bad.pcap", "--out", "{root}/f.csv"],
     "no flows extracted from any capture ({root}/bad.pcap: not a pcap"),
]


@pytest.mark.parametrize(("args", "message"), [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_are_one_line_with_exit_code_two(trained, capsys, args, message):
    from fedfleet.cli.main import main

    _duplicate_names(trained)
    make_flows(rows_per_class=20).drop(columns=["capture"]).to_csv(trained / "nocapture.csv", index=False)
    make_flows(rows_per_class=20).assign(label=None).to_csv(trained / "nolabel.csv", index=False)
    (trained / "labels.csv").write_text("label\nWeb\nDNS\nWeb\nDNS\n")
    (trained / "bad.pcap").write_bytes(bytes(range(128, 256)))
    with pytest.raises(SystemExit) as exit_info:
        main(["traffic", *(arg.format(root=trained) for arg in args)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    errors = [line for line in err.splitlines() if not line.startswith("note: ")]  # notes may precede it
    assert len(errors) == 1 and errors[0].startswith("error: ") and message.format(root=trained) in errors[0], err
    assert "refitting" not in err  # nothing was computed before the check
    assert not (trained / "flows.xlsx").exists()


def test_classifier_parameters_and_class_weight_reach_the_saved_model(runner, trained, tmp_path):
    model = tmp_path / "model"
    result = invoke(runner, "train", trained / "flows.csv", "--label", "label", "--out", model,
                    "--classifier-param", "max_iter=7", "--classifier-param", "learning_rate=0.2",
                    "--class-weight", "Web=2,DNS=0.5", "--format", "json")
    assert result.exit_code == 0, result.output
    params = json.loads((model / "model.json").read_text())["classifier_params"]
    assert params["max_iter"] == 7 and params["learning_rate"] == 0.2
    assert params["class_weight"] == {"Web": 2.0, "DNS": 0.5} and params["l2_regularization"] == 1.0


def test_a_class_of_one_flow_trains_with_a_notice(runner, tmp_path):
    table = make_flows(rows_per_class=20)
    table.loc[0, "label"] = "Telnet"
    flows = tmp_path / "flows.csv"
    table.to_csv(flows, index=False)
    for extra in ([], ["--classifier-param", "early_stopping=true"]):
        result = invoke(runner, "train", flows, "--label", "label", "--out", tmp_path / "m", "--format", "json", *extra)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["too_small_to_validate"][-1] == "Telnet"
        assert "too small to validate" in result.stderr and "Telnet" in result.stderr
    training = json.loads((tmp_path / "m" / "model.json").read_text())["training"]
    assert training["class_flows"]["Telnet"] == 1 and training["validation_flows"] > 0


def test_predictions_keep_the_key_columns_of_a_cicflowmeter_table(runner, tmp_path):
    rows = ["Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, Timestamp,"
            " Flow Duration, Total Fwd Packets, Flow IAT Mean, Label"]
    for i in range(60):
        benign = i % 2 == 0
        rows.append(f"f{i}, 10.0.0.{i}, {40000 + i}, 10.0.1.1, {80 if benign else 22}, 6, 3/7/2017 8:{i:02d},"
                    f" {1000 + i}, {5 if benign else 50}, {10.0 * i}, {'BENIGN' if benign else 'SSH-Patator'}")
    flows = tmp_path / "cic.csv"
    flows.write_text("\n".join(rows) + "\n")
    assert invoke(runner, "train", flows, "--label", "Label", "--out", tmp_path / "m").exit_code == 0
    result = invoke(runner, "classify", tmp_path / "m", flows)
    assert result.exit_code == 0, result.output
    from io import StringIO

    predictions = pd.read_csv(StringIO(result.stdout))
    assert list(predictions.columns) == ["Flow ID", "Source IP", "Source Port", "Destination IP",
                                         "Destination Port", "Protocol", "Timestamp", "predicted", "probability"]
    assert predictions["Flow ID"].tolist() == [f"f{i}" for i in range(60)]
    assert (predictions["predicted"] == ["BENIGN", "SSH-Patator"] * 30).all()


def test_train_names_the_columns_it_dropped(runner, tmp_path):
    flows = tmp_path / "flows.csv"
    make_flows(rows_per_class=20).assign(tunnel_parents="(empty)").to_csv(flows, index=False)
    result = invoke(runner, "train", flows, "--label", "label", "--out", tmp_path / "m", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dropped_columns"] == ["tunnel_parents"]
    assert "note: dropped column(s) with no valid value: tunnel_parents" in result.stderr
