"""``fedfleet run --out``: one run per directory, a one-line error (exit 2) for every unusable one."""

import json

import pytest
import yaml

from tests.cli.test_run_cli import _invoke


@pytest.fixture
def config_file(tmp_path, digits_config):
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(digits_config))
    return path


def one_line_error(code, stderr, *fragments):
    assert code == 2
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


@pytest.mark.parametrize(("out", "fragments"), [
    ("a-file", ("a-file is a file, not a folder",)),
    ("a-file/run", ("a-file is a file, not a folder",)),
    ("/proc/fedfleet-run", ("/proc/fedfleet-run", "cannot create")),
    ("/proc", ("cannot write in /proc",)),
])
def test_unusable_out_is_one_line(config_file, tmp_path, capsys, monkeypatch, out, fragments):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("x")
    code, stdout, stderr = _invoke(["run", str(config_file), "--out", out], capsys)
    one_line_error(code, stderr, *fragments)
    assert stdout == ""


def test_a_second_run_into_the_same_out_is_refused_until_overwrite(config_file, tmp_path, capsys):
    out = tmp_path / "r"
    assert _invoke(["run", str(config_file), "--out", str(out), "--format", "json"], capsys)[0] == 0
    first = (out / "summary.json").read_text()
    code, _, stderr = _invoke(["run", str(config_file), "--set", "train.lr=0.3", "--out", str(out)], capsys)
    one_line_error(code, stderr, f"run directory {out} already holds a run", "--overwrite")
    assert (out / "summary.json").read_text() == first
    args = ["run", str(config_file), "--set", "train.lr=0.3", "--set", "checkpoint_every=0", "--out", str(out),
            "--overwrite", "--format", "json"]
    assert _invoke(args, capsys)[0] == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["lr"] == 0.3
    assert not (out / "checkpoint").exists() and (out / "report.html").exists()
    code, _, stderr = _invoke(["run", "--resume", str(out)], capsys)
    one_line_error(code, stderr, "no checkpoint")


def test_resume_with_overwrite_is_refused(config_file, tmp_path, capsys):
    out = tmp_path / "r"
    assert _invoke(["run", str(config_file), "--out", str(out), "--format", "json"], capsys)[0] == 0
    code, _, stderr = _invoke(["run", "--resume", str(out), "--overwrite"], capsys)
    one_line_error(code, stderr, "--overwrite")


def test_resume_of_a_directory_with_another_runs_checkpoint_is_one_line(config_file, tmp_path, capsys):
    out = tmp_path / "r"
    assert _invoke(["run", str(config_file), "--out", str(out), "--format", "json"], capsys)[0] == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["model"]["name"] = "cnn"
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    code, stdout, stderr = _invoke(["run", "--resume", str(out), "--format", "json"], capsys)
    one_line_error(code, stderr, f"checkpoint in {out}", "model.name", "model size")
    assert stdout == "" and json.loads((out / "summary.json").read_text())
