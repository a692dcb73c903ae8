"""``fedfleet run`` progress off a terminal (plain lines) and what Ctrl-C prints (how to resume, exit 130)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fedfleet.cli.progress import DeadlineWarning, ProgressLines
from fedfleet.fl.callbacks import BaseCallback
from tests.cli.test_run_cli import _invoke


@pytest.fixture
def config_file(tmp_path, digits_config):
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(digits_config))
    return path


def test_stderr_to_a_file_gets_one_plain_line_per_round(config_file, tmp_path):
    log = tmp_path / "run.log"
    env = {**os.environ, "TERM": "dumb"}
    script = "import fedfleet.cli.progress as p, fedfleet.cli.main as m; p.LINE_INTERVAL_S = 0.0; m.main()"
    with log.open("w") as stderr:
        done = subprocess.run(
            [sys.executable, "-c", script, "run", str(config_file), "--out", str(tmp_path / "r")],
            stderr=stderr,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, log.read_text()
    lines = log.read_text().splitlines()
    assert lines[0] == "training: 4 rounds"
    rounds = [line for line in lines if line.startswith("round ")]
    assert [line.split()[1] for line in rounds] == ["1/4", "2/4", "3/4", "4/4"]
    metrics = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert (
        rounds[-1] == f"round 4/4  acc {metrics[-1]['test_accuracy']:.3f}  virtual {metrics[-1]['virtual_time_s']:.0f}s"
    )
    assert "\x1b[" not in log.read_text()  # no terminal control codes in a log


def test_lines_are_throttled_but_the_first_and_last_always_shown():
    lines: list[str] = []
    now = iter([0.0, 0.5, 1.0, 2.5, 3.0])
    progress = ProgressLines(lines.append, interval_s=2.0, clock=lambda: next(now))
    progress.on_start(5, 0)
    for step in range(1, 6):
        progress.on_step_end(step, {"test_accuracy": step / 10, "virtual_time_s": 10.0 * step} if step != 4 else None)
    assert lines == [
        "training: 5 rounds",
        "round 1/5  acc 0.100  virtual 10s",
        "round 4/5  acc 0.300  virtual 30s",
        "round 5/5  acc 0.500  virtual 50s",
    ]


def test_an_async_run_counts_versions_not_rounds(config_file, tmp_path, capsys):
    args = ["run", str(config_file), "--set", "train.mode=async", "--set", "strategy.name=fedasync",
            "--set", "train.rounds=3", "--out", str(tmp_path / "r")]
    code, _, stderr = _invoke(args, capsys)
    assert code == 0
    assert "training: 3 versions" in stderr and "version 3/3" in stderr and "round " not in stderr


def test_a_deadline_that_drops_every_update_warns_once(config_file, tmp_path, capsys):
    out = tmp_path / "r"
    code, _, stderr = _invoke(["run", str(config_file), "--set", "train.deadline_s=1e-6", "--out", str(out)], capsys)
    assert code == 0
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "missed the round deadline" in warnings[0] and "train.deadline_s" in warnings[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["updates_accepted"] == 0 and summary["dropped"] == 4 * 4  # 4 rounds of 4 clients
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["dropped"] == 16


def test_no_warning_while_updates_arrive():
    lines: list[str] = []
    warning = DeadlineWarning(lines.append)
    warning.on_step_end(1, {"dropped": 3, "updates_accepted": 1})
    assert lines == []


class _CtrlC(BaseCallback):
    """Raises KeyboardInterrupt at the end of round ``at``, as Ctrl-C there would."""

    def __init__(self, write: object, at: int = 3) -> None:
        self.at = at

    def on_step_end(self, step: int, record: dict[str, object] | None) -> None:
        if step == self.at:
            raise KeyboardInterrupt


def test_ctrl_c_says_how_to_resume_and_the_resume_finishes_the_run(config_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    monkeypatch.setattr("fedfleet.cli.run_cmd.DeadlineWarning", _CtrlC)
    code, stdout, stderr = _invoke(["run", str(config_file), "--out", str(out)], capsys)
    assert code == 130 and stdout == ""
    last = stderr.splitlines()[-1]
    assert last.startswith("interrupted; continue with `fedfleet run --resume ")
    assert str(out) in last and "kept every 2 rounds (checkpoint_every)" in last
    assert "Traceback" not in stderr
    monkeypatch.undo()
    code, stdout, _ = _invoke(["run", "--resume", str(out), "--format", "json"], capsys)
    assert code == 0
    straight = tmp_path / "straight"
    assert _invoke(["run", str(config_file), "--out", str(straight), "--format", "json"], capsys)[0] == 0
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["final_accuracy"] == json.loads((straight / "summary.json").read_text())["final_accuracy"]


def test_ctrl_c_before_any_checkpoint_says_there_is_nothing_to_resume(config_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    monkeypatch.setattr("fedfleet.cli.run_cmd.DeadlineWarning", lambda write: _CtrlC(write, at=1))
    code, _, stderr = _invoke(["run", str(config_file), "--set", "checkpoint_every=0", "--out", str(out)], capsys)
    assert code == 130
    assert stderr.splitlines()[-1] == (
        f"interrupted; no checkpoint was kept (checkpoint_every=0), so {out} cannot "
        "be resumed: rerun it with --overwrite"
    )


def test_resume_hint_names_the_default_run_directory(config_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("fedfleet.cli.run_cmd.DeadlineWarning", lambda write: _CtrlC(write, at=1))
    code, _, stderr = _invoke(["run", str(config_file)], capsys)
    assert code == 130
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("digits-test-")
    assert f"nothing to resume in {Path('runs') / run_dir.name}; rerun it with --overwrite" in stderr.splitlines()[-1]
