"""``fedfleet multijob`` on the tiny two-job config: outputs, JSON, resume, report of several runs, errors."""

import json
from pathlib import Path

import pytest
import yaml

from fedfleet.cli.main import main

TINY = str(Path(__file__).resolve().parents[2] / "configs" / "multijob" / "tiny.yaml")


def _invoke(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_multijob_writes_the_run_directory_and_a_report(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, stderr = _invoke(["multijob", TINY, "--out", str(out), "--set", "scheduler.name=greedy"], capsys)
    assert code == 0, stderr
    for name in ("config.yaml", "summary.json", "schedule.jsonl", "report.html", "checkpoint",
                 "jobs/digits-shards/metrics.jsonl", "jobs/digits-iid/model.safetensors"):
        assert (out / name).exists(), name
    assert "digits-iid: final accuracy" in stdout and "report:" in stdout
    assert "round 6/6" in stderr  # progress on stderr, results on stdout


def test_json_output_resume_and_one_report_for_several_policies(tmp_path, capsys):
    runs = []
    for policy in ("random", "rlds"):
        runs.append(tmp_path / policy)
        code, stdout, _ = _invoke(["multijob", TINY, "--out", str(runs[-1]), "--format", "json", "--set",
                                   f"scheduler.name={policy}", "--set", "scheduler.rlds.imitation_steps=2"], capsys)
        assert code == 0
        payload = json.loads(stdout)
        assert payload["scheduler"] == policy and set(payload["jobs"]) == {"digits-shards", "digits-iid"}
    assert (tmp_path / "rlds" / "scheduler" / "rlds.safetensors").is_file()
    code, stdout, _ = _invoke(["multijob", "--resume", str(runs[0]), "--format", "json"], capsys)
    assert code == 0 and json.loads(stdout)["rounds"] == 6
    page = tmp_path / "compare.html"
    code, _, _ = _invoke(["report", *map(str, runs), "--out", str(page)], capsys)
    assert code == 0
    html = page.read_text()
    assert "2 multi-job runs" in html and "compare_occupancy1.png" in html and "time_to_all_targets_s" in html


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "jobs.0.train.clients_per_round=13"], "jobs.0 (digits-shards): train.clients_per_round=13"),
    (["--set", "scheduler.bogus=1"], "unknown config key 'scheduler.bogus'"),
    (["--set", "jobs.5.train.rounds=1"], "override jobs.5"),
    (["--set", "scheduler.rlds.weights=/nonexistent.safetensors", "--set", "scheduler.name=rlds"],
     "config key 'scheduler.rlds.weights': /nonexistent.safetensors is not a file"),
])
def test_bad_input_is_one_line_with_exit_code_2(args, message, tmp_path, capsys):
    code, stdout, stderr = _invoke(["multijob", TINY, "--out", str(tmp_path / "r"), *args], capsys)
    assert code == 2 and stdout == "" and not (tmp_path / "r").exists()  # refused before anything is written
    assert message in stderr and len(stderr.strip().splitlines()) == 1


def test_a_report_mixing_run_kinds_is_refused(tmp_path, capsys, digits_config):
    single = tmp_path / "single.yaml"
    single.write_text(yaml.safe_dump(digits_config))
    assert _invoke(["run", str(single), "--out", str(tmp_path / "s")], capsys)[0] == 0
    assert _invoke(["multijob", TINY, "--out", str(tmp_path / "m"), "--set", "scheduler.name=greedy"], capsys)[0] == 0
    code, _, stderr = _invoke(["report", str(tmp_path / "s"), str(tmp_path / "m"), "--out",
                               str(tmp_path / "x.html")], capsys)
    assert code == 2 and "either multi-job runs or single runs" in stderr
