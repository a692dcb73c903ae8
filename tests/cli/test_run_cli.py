"""CLI smoke tests on a seconds-long digits job: run, resume, report, data info, errors."""

import json

import pytest
import yaml

from fedfleet.cli.main import main


def _invoke(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture
def config_file(tmp_path, digits_config):
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(digits_config))
    return path


def test_run_writes_the_contracted_outputs(config_file, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, stderr = _invoke(["run", str(config_file), "--out", str(out)], capsys)
    assert code == 0
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "model.safetensors", "report.html"):
        assert (out / name).exists(), name
    assert "report:" in stdout and "final accuracy" in stdout  # results on stdout
    assert "report:" not in stderr  # stderr holds only progress
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all("test_accuracy" in json.loads(line) for line in lines)


def test_run_json_prints_one_object_with_the_summary(config_file, tmp_path, capsys):
    code, stdout, _ = _invoke(["run", str(config_file), "--out", str(tmp_path / "r"), "--format", "json"], capsys)
    assert code == 0
    payload = json.loads(stdout)
    assert payload["run_dir"] == str(tmp_path / "r")
    assert 0.0 <= payload["final_accuracy"] <= 1.0
    assert payload == {"run_dir": str(tmp_path / "r"), **json.loads((tmp_path / "r" / "summary.json").read_text())}


def test_set_overrides_reach_the_run(config_file, tmp_path, capsys):
    out = tmp_path / "r"
    code, _, _ = _invoke(["run", str(config_file), "--set", "train.rounds=2", "--out", str(out)], capsys)
    assert code == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["rounds"] == 2


def test_resume_continues_a_run_directory(config_file, tmp_path, capsys):
    out = tmp_path / "r"
    assert _invoke(["run", str(config_file), "--out", str(out), "--format", "json"], capsys)[0] == 0
    finished = json.loads((out / "summary.json").read_text())
    code, stdout, _ = _invoke(["run", "--resume", str(out), "--format", "json"], capsys)
    assert code == 0
    assert json.loads(stdout)["final_accuracy"] == finished["final_accuracy"]


def test_report_overlays_two_runs(config_file, tmp_path, capsys):
    for name, strategy in (("avg", "fedavg"), ("prox", "fedprox")):
        args = ["run", str(config_file), "--set", f"strategy.name={strategy}", "--out", str(tmp_path / name)]
        assert _invoke(args, capsys)[0] == 0
    page = tmp_path / "compare.html"
    code, _, _ = _invoke(["report", str(tmp_path / "avg"), str(tmp_path / "prox"), "--out", str(page)], capsys)
    assert code == 0
    html = page.read_text()
    assert "avg" in html and "prox" in html and "<img" in html


def test_data_info_json_lists_every_client(config_file, capsys):
    code, stdout, _ = _invoke(["data", "info", str(config_file), "--format", "json"], capsys)
    assert code == 0
    payload = json.loads(stdout)
    assert payload["clients"] == 8 == len(payload["clients_table"])
    assert payload["train_samples"] == sum(row["samples"] for row in payload["clients_table"])
    assert all(0.0 <= row["noniid_degree"] <= 1.0 for row in payload["clients_table"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "{config}", "--set", "train.lr=-1"], "config key 'train.lr'"),
        (["run", "{config}", "--set", "train.lrr=1"], "unknown config key 'train.lrr'"),
        (["run", "{tmp}/missing.yaml"], "not found"),
        (["run", "--resume", "{tmp}"], "is not a run directory"),
        (["run", "{config}", "--set", "model.name=resnet999"], "resnet999"),
        (["run", "{config}", "--set", "data.dataset=cifar"], "cifar"),
        (["report", "{tmp}"], "{tmp}"),
        (["run", "{config}", "--format", "xml"], "'xml' is not one of 'text', 'json'"),
        (["run", "{config}", "--sett", "x=1"], "No such option: --sett"),
        (["nosuch"], "No such command 'nosuch'"),
        (["run", "{config}", "--set", "data.alpha=.inf"], "must be a finite number"),
        (["run", "{config}", "--set", "seed=-1"], "config key 'seed'"),
        (["run", "{config}", "--set", "data.test_fraction=0.0001"], "keeps none of the"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message, config_file, tmp_path, capsys):
    filled = [arg.format(config=config_file, tmp=tmp_path) for arg in args]
    code, stdout, stderr = _invoke(filled, capsys)
    assert code == 2 and stdout == ""
    assert stderr.startswith("error: ") and stderr.count("\n") == 1
    assert message.format(tmp=tmp_path) in stderr
    assert "Traceback" not in stderr


def test_resume_refuses_options_it_would_ignore(config_file, tmp_path, capsys):
    out = tmp_path / "r"
    assert _invoke(["run", str(config_file), "--out", str(out)], capsys)[0] == 0
    for extra in (["--set", "train.rounds=9"], [str(config_file)], ["--out", str(tmp_path / "elsewhere")]):
        code, _, stderr = _invoke(["run", "--resume", str(out), *extra], capsys)
        assert code == 2 and "--resume continues a run with its own config" in stderr


def test_report_names_a_damaged_metrics_file(config_file, tmp_path, capsys):
    out = tmp_path / "r"
    assert _invoke(["run", str(config_file), "--out", str(out)], capsys)[0] == 0
    metrics = out / "metrics.jsonl"
    metrics.write_text(metrics.read_text()[:-30])
    code, _, stderr = _invoke(["report", str(out), "--out", str(tmp_path / "x.html")], capsys)
    assert code == 2 and f"{metrics} is damaged" in stderr and stderr.count("\n") == 1


def test_data_info_text_table_goes_to_stdout(config_file, capsys):
    code, stdout, _ = _invoke(["data", "info", str(config_file)], capsys)
    assert code == 0 and "noniid_degree" in stdout
