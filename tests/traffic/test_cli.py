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
    assert list(table.columns) == ["capture", "src_ip", "src_port", "dst_port", "protocol",
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
