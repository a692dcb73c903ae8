"""Every class of bad input is one line on stderr starting with "error:", naming the thing, exit code 2.

One row per class: the row builds its inputs under ``tmp_path`` and returns the command line and
the fragments the line must contain (and those it must not).
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.cli.test_run_cli import _invoke

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DIGITS = str(CONFIGS / "digits.yaml")
VERTICAL = str(CONFIGS / "vertical" / "digits.yaml")
MASK = str(CONFIGS / "privacy" / "mask_digits.yaml")
OCCLUDE = str(CONFIGS / "privacy" / "occlude_digits.yaml")
LAB = str(CONFIGS / "placement" / "lab.yaml")
GARBAGE = bytes(range(128, 256)) * 4  # not UTF-8


@dataclass
class Case:
    args: list[str]
    says: tuple[str, ...]  # fragments the error line contains
    never: tuple[str, ...] = field(default=())  # fragments it must not contain


def _file(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _catalog(tmp: Path, device: str) -> str:
    return str(_file(tmp / "devices.yaml", f"devices:\n  - {device}\n"))


def _metrics(tmp: Path, content: str | bytes) -> Path:
    _file(tmp / "run" / "metrics.jsonl", content)
    return tmp / "run"


ROWS: dict[str, Callable[[Path], Case]] = {
    # unreadable files
    "config-binary": lambda tmp: Case(
        ["run", str(_file(tmp / "c.yaml", GARBAGE))], (str(tmp / "c.yaml"), "not a text file")
    ),
    "config-is-a-folder": lambda tmp: Case(["run", str(tmp)], (str(tmp), "is a folder")),
    "trace-binary": lambda tmp: Case(
        ["run", DIGITS, "--set", f"fleet.trace={_file(tmp / 't.csv', GARBAGE)}", "--set", "train.deadline_s=100",
         "--out", str(tmp / "r")],
        ("fleet.trace", str(tmp / "t.csv"), "not a text file"),
    ),
    "catalog-binary": lambda tmp: Case(
        ["place", "--model", "mlp", "--devices", str(_file(tmp / "d.yaml", GARBAGE))],
        ("device catalog", str(tmp / "d.yaml"), "not a text file"),
    ),
    "profile-csv-binary": lambda tmp: Case(
        ["place", "--profile", str(_file(tmp / "p.csv", GARBAGE)), "--devices", LAB],
        ("profile table", str(tmp / "p.csv"), "not a text file"),
    ),
    # output paths
    "mask-out-is-a-file": lambda tmp: Case(
        ["privacy", "mask", MASK, "--out", str(_file(tmp / "f", "x"))], ("--out", str(tmp / "f"), "is a file")
    ),
    "occlude-out-under-a-file": lambda tmp: Case(
        ["privacy", "occlude", OCCLUDE, "--out", str(_file(tmp / "f", "x") / "sub")],
        ("--out", str(tmp / "f"), "is a file"),
    ),
    "mask-out-in-proc": lambda tmp: Case(
        ["privacy", "mask", MASK, "--out", "/proc/fedfleet-x"], ("/proc/fedfleet-x", "cannot create")
    ),
    "report-out-is-a-folder": lambda tmp: Case(
        ["report", str(tmp), "--out", str(tmp)], ("--out", str(tmp), "is a folder")
    ),
    "report-out-under-a-file": lambda tmp: Case(
        ["report", str(tmp), "--out", str(_file(tmp / "f", "x") / "r.html")], ("--out", "is a file")
    ),
    "report-out-dev-full": lambda tmp: Case(
        ["report", str(_metrics(tmp, '{"round": 1, "virtual_time_s": 1.0, "test_accuracy": 0.5}\n')),
         "--out", "/dev/full"],
        ("cannot write or read /dev/full", "No space left on device"),
    ),
    "report-out-not-html": lambda tmp: Case(
        ["report", str(tmp), "--out", str(tmp / "r.pdf")], ("--out", "r.pdf", "HTML page", "'.pdf'")
    ),
    "report-out-in-proc": lambda tmp: Case(
        ["report", str(tmp), "--out", "/proc/r.html"], ("/proc/r.html", "cannot write")
    ),
    # damaged run directories
    "report-metrics-missing-keys": lambda tmp: Case(
        ["report", str(_metrics(tmp, '{"round": 1}\n')), "--out", str(tmp / "r.html")],
        ("metrics.jsonl line 1", "virtual_time_s"),
    ),
    "report-metrics-json-list": lambda tmp: Case(
        ["report", str(_metrics(tmp, "[1, 2]\n")), "--out", str(tmp / "r.html")],
        ("metrics.jsonl line 1", "a JSON list"),
    ),
    "report-metrics-text-accuracy": lambda tmp: Case(
        ["report", str(_metrics(tmp, '{"round": 1, "virtual_time_s": 1.0, "test_accuracy": "high"}\n')),
         "--out", str(tmp / "r.html")],
        ("metrics.jsonl line 1", "'test_accuracy' is 'high', not a number"),
    ),
    "report-metrics-empty": lambda tmp: Case(
        ["report", str(_metrics(tmp, "")), "--out", str(tmp / "r.html")], ("metrics.jsonl holds no records", "--resume")
    ),
    "report-metrics-binary": lambda tmp: Case(
        ["report", str(_metrics(tmp, GARBAGE)), "--out", str(tmp / "r.html")], ("metrics.jsonl", "not a text file")
    ),
    "resume-unknown-key-names-the-file": lambda tmp: Case(
        ["run", "--resume", str(_file(tmp / "run" / "config.yaml", "bogus: 1\n").parent)],
        (str(tmp / "run" / "config.yaml"), "unknown config key 'bogus'"),
    ),
    # values
    "vertical-negative-seed": lambda tmp: Case(
        ["vertical", VERTICAL, "--set", "seed=-1"], ("'seed'", "must be >= 0", "got -1")
    ),
    "two-field-rule": lambda tmp: Case(
        ["run", DIGITS, "--set", "train.clients_per_round=50"],
        ("train.clients_per_round (50) exceeds data.num_clients (10)",),
        ("'config'", "{'"),
    ),
    "vertical-unknown-key-in-the-file": lambda tmp: Case(
        ["vertical", str(_file(tmp / "v.yaml", Path(VERTICAL).read_text() + "bogus: 1\n"))],
        (f"config file {tmp / 'v.yaml'}: unknown config key 'bogus'", "keys allowed here: name, seed, data"),
        ("default.yaml",),
    ),
    "privacy-unknown-key": lambda tmp: Case(
        ["privacy", "occlude", "--set", "rule.bogus=1"],
        ("'rule.bogus'", "keys allowed here: name, min_availability"),
        ("default.yaml",),
    ),
    "rounds-1e12": lambda tmp: Case(
        ["run", DIGITS, "--set", "train.rounds=1e12"], ("'train.rounds'", "write 1000000000000")
    ),
    "rounds-bool-from-set-is-not-blamed-on-the-file": lambda tmp: Case(
        ["run", DIGITS, "--set", "train.rounds=true"], ("'train.rounds'", "whole number", "true"), (DIGITS,)
    ),
    "base-speed-underflow": lambda tmp: Case(
        ["run", DIGITS, "--set", "fleet.base_speed=1e-320", "--out", str(tmp / "r")],
        ("fleet.base_speed=1e-320", "device times are infinite"),
    ),
    "catalog-price-inf": lambda tmp: Case(
        [
            "place",
            "--model",
            "mlp",
            "--devices",
            _catalog(tmp, "{name: a, count: 1, speed: 1, memory_gb: 8, price_per_hour: .inf}"),
        ],
        ("devices.0.price_per_hour", "finite"),
    ),
    "catalog-efficiency-nan": lambda tmp: Case(
        [
            "place",
            "--model",
            "mlp",
            "--devices",
            _catalog(tmp, "{name: a, count: 1, speed: 1, memory_gb: 8, price_per_hour: 1, efficiency: {dense: .nan}}"),
        ],
        ("devices.0.efficiency.dense", "finite"),
    ),
    "placement-memory-shortfall-in-small-units": lambda tmp: Case(
        [
            "place",
            "--model",
            "mlp",
            "--devices",
            _catalog(tmp, "{name: a, count: 1, speed: 1, memory_gb: 0.00001, price_per_hour: 1}"),
        ],
        ("memory:", "KiB each", "short by"),
        ("0.0 GiB",),
    ),
    "privacy-train-size-beyond-the-data": lambda tmp: Case(
        ["privacy", "mask", MASK, "--set", "data.train_size=100000"], ("data.train_size (100000) exceeds the",)
    ),
    "privacy-test-size-beyond-the-data": lambda tmp: Case(
        ["privacy", "occlude", OCCLUDE, "--set", "data.test_size=100000"], ("data.test_size (100000) exceeds the",)
    ),
    "privacy-unknown-dataset-before-any-progress": lambda tmp: Case(
        ["privacy", "occlude", OCCLUDE, "--set", "data.dataset=cifar"], ("unknown dataset 'cifar'", "digits")
    ),
    "privacy-lr-inf": lambda tmp: Case(["privacy", "mask", MASK, "--set", "model.lr=.inf"], ("'model.lr'", "finite")),
    "override-not-yaml": lambda tmp: Case(
        ["run", DIGITS, "--set", "train.rounds=[1,"], ("override 'train.rounds'", "not valid YAML", "quote")
    ),
    "override-not-text": lambda tmp: Case(
        ["run", DIGITS, "--set", "name=\udcff\udcfe"], ("override 'name'", "not valid YAML")
    ),
    "config-duplicate-key": lambda tmp: Case(
        ["run", str(_file(tmp / "c.yaml", "seed: 1\nseed: 2\n"))], (str(tmp / "c.yaml"), "'seed' appears twice")
    ),
    "lr-beyond-float32": lambda tmp: Case(
        ["run", DIGITS, "--set", "train.lr=1e300", "--out", str(tmp / "r")], ("'train.lr'", "must be <= 3.40282e+38")
    ),
    "trace-missing-is-named-before-the-deadline-rule": lambda tmp: Case(
        ["run", DIGITS, "--set", f"fleet.trace={tmp / 'none.csv'}", "--out", str(tmp / "r")],
        ("fleet.trace", str(tmp / "none.csv"), "not a file"), ("wait forever",),
    ),
    "krum-more-attackers-than-it-tolerates": lambda tmp: Case(
        ["run", DIGITS, "--set", "aggregator.name=krum", "--set", "aggregator.num_byzantine=50",
         "--set", "train.clients_per_round=5", "--out", str(tmp / "r")],
        ("aggregator.num_byzantine=50", "at most 1"),
    ),
    "data-root-missing": lambda tmp: Case(
        ["run", "--set", "data.root=" + str(tmp / "none"), "--set", "train.rounds=1", "--out", str(tmp / "r")],
        ("data.root", str(tmp / "none"), "no such folder"),
    ),
}


@pytest.mark.parametrize("row", list(ROWS), ids=list(ROWS))
def test_bad_input_is_one_named_line_with_exit_code_2(row, tmp_path, capsys):
    case = ROWS[row](tmp_path)
    code, stdout, stderr = _invoke(case.args, capsys)
    assert code == 2, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in case.says:
        assert fragment in lines[0], lines[0]
    for fragment in case.never:
        assert fragment not in lines[0], lines[0]


def test_an_os_error_while_writing_names_the_file(monkeypatch, tmp_path, capsys):
    def full_disk(run_dirs, out):
        raise OSError(errno.ENOSPC, "No space left on device", str(out))

    monkeypatch.setattr("fedfleet.cli.run_cmd.write_runs_report", full_disk)
    code, _, stderr = _invoke(["report", str(tmp_path), "--out", str(tmp_path / "r.html")], capsys)
    assert code == 2
    assert stderr == f"error: cannot write or read {tmp_path / 'r.html'}: No space left on device\n"


def test_an_os_error_about_no_file_is_not_hidden(monkeypatch, tmp_path, capsys):
    def bug(run_dirs, out):
        raise OSError("not about a path")

    monkeypatch.setattr("fedfleet.cli.run_cmd.write_runs_report", bug)
    with pytest.raises(OSError, match="not about a path"):
        _invoke(["report", str(tmp_path), "--out", str(tmp_path / "r.html")], capsys)


def test_json_output_never_holds_infinity_or_nan(capsys):
    from fedfleet.cli.common import print_json

    print_json({"virtual_time_s": float("inf"), "curve": [0.5, float("nan")], "nested": {"x": -float("inf")}})
    text = capsys.readouterr().out
    assert json.loads(text) == {"virtual_time_s": None, "curve": [0.5, None], "nested": {"x": None}}
    assert "Infinity" not in text and "NaN" not in text


def test_data_fetch_reports_an_installed_copy_without_downloading(monkeypatch, tmp_path, capsys):
    from fedfleet.data import datasets

    for name in datasets.FASHION_MNIST_FILES:
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setattr(datasets, "SYSTEM_DIR", tmp_path)
    monkeypatch.delenv("FEDFLEET_DATA", raising=False)

    def offline(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr("fedfleet.cli.data_cmd.download_fashion_mnist", offline)
    code, stdout, _ = _invoke(["data", "fetch"], capsys)
    assert code == 0 and f"already installed in {tmp_path}" in " ".join(stdout.split())


def test_strict_types_in_a_config_file(tmp_path, capsys):
    config = yaml.safe_load(Path(DIGITS).read_text())
    config["train"]["rounds"] = 2.5
    path = _file(tmp_path / "c.yaml", yaml.safe_dump(config))
    code, _, stderr = _invoke(["run", str(path)], capsys)
    assert code == 2 and f"config file {path}: config key 'train.rounds' must be a whole number" in stderr
