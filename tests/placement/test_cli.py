import json
from pathlib import Path

import pytest

from fedfleet.cli import place_cmd
from fedfleet.cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "placement"


def _run(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["place", *args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_place_prints_one_json_object(capsys):
    code, out, _ = _run(["--profile", str(CONFIGS / "ctr_dnn.yaml"), "--devices", str(CONFIGS / "cloud.yaml"),
                         "--planner", "dp", "--format", "json"], capsys)
    assert code == 0
    payload = json.loads(out)
    assert payload["planner"] == "dp" and payload["throughput"] >= payload["throughput_target"]
    assert payload["stages"][0]["device"] == "cpu-server"  # the 51 GB embedding fits only there
    assert sum(stage["layers"] for stage in payload["stages"]) == 7


def test_place_profiles_a_builtin_model_and_writes_a_report(capsys, tmp_path):
    report = tmp_path / "plan.html"
    code, out, _ = _run(["--model", "mlp", "--devices", str(CONFIGS / "lab.yaml"), "--target", "200",
                         "--report", str(report)], capsys)
    assert code == 0
    assert "throughput" in out and "cost" in out
    assert report.exists() and (tmp_path / "plan.pipeline.png").exists()


def test_place_reports_an_infeasible_catalog_in_one_line(capsys):
    code, out, err = _run(["--profile", str(CONFIGS / "ctr_dnn.yaml"), "--devices", str(CONFIGS / "cloud.yaml"),
                           "--planner", "gpu-only", "--format", "json"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: memory: the whole model needs") and err.count("\n") == 1


def test_place_needs_exactly_one_model_source(capsys):
    code, _, err = _run(["--devices", str(CONFIGS / "cloud.yaml")], capsys)
    assert code == 2 and "exactly one of --model NAME and --profile FILE" in err


def test_place_refuses_a_directory_as_the_report(capsys, tmp_path):
    code, out, err = _run(["--profile", str(CONFIGS / "ctr_dnn.yaml"), "--devices", str(CONFIGS / "cloud.yaml"),
                           "--report", str(tmp_path)], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"error: --report {tmp_path}: is a folder") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == [] and not tmp_path.with_suffix(".pipeline.png").exists()


def test_place_refuses_a_profile_row_that_does_nothing(capsys, tmp_path):
    table = tmp_path / "zero.csv"
    table.write_text("name,kind,flops,activation_bytes\nx,dense,0,0\n")
    code, out, err = _run(["--profile", str(table), "--devices", str(CONFIGS / "cloud.yaml")], capsys)
    assert code == 2 and out == "" and "layer 1 ('x'): flops and activation_bytes are both 0" in err


def test_a_saved_profile_re_derives_the_identical_plan(capsys, tmp_path):
    saved = tmp_path / "mlp.yaml"
    code, out, _ = _run(["--model", "mlp", "--devices", str(CONFIGS / "lab.yaml"), "--batch-size", "64",
                         "--target", "2000", "--planner", "dp", "--save-profile", str(saved), "--format", "json"],
                        capsys)
    assert code == 0 and saved.exists()
    first = json.loads(out)
    code, out, _ = _run(["--profile", str(saved), "--devices", str(CONFIGS / "lab.yaml"), "--batch-size", "64",
                         "--target", "2000", "--planner", "dp", "--format", "json"], capsys)
    again = json.loads(out)
    assert code == 0 and first.pop("saved_profile") == str(saved)
    first.pop("planning_time_s"), again.pop("planning_time_s")
    assert again == first


def test_a_builtin_model_is_profiled_at_the_jobs_batch_size(capsys, monkeypatch):
    seen = []
    original = place_cmd.profile_torch_model

    def recording(*args, **kwargs):
        seen.append(kwargs["batch_size"])
        return original(*args, **{**kwargs, "repeats": 1})

    monkeypatch.setattr(place_cmd, "profile_torch_model", recording)
    for extra in ([], ["--batch-size", "64"]):
        code, _, _ = _run(["--model", "mlp", "--devices", str(CONFIGS / "lab.yaml"), "--target", "200", *extra],
                          capsys)
        assert code == 0
    assert seen == [256, 64]  # lab.yaml's job batch, then the override


@pytest.mark.parametrize("name", ["profile.txt", ""])
def test_save_profile_refuses_an_unreadable_kind_of_file_before_profiling(capsys, tmp_path, name):
    code, out, err = _run(["--model", "cnn", "--devices", str(CONFIGS / "lab.yaml"),
                           "--save-profile", str(tmp_path / name)], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: --save-profile {tmp_path / name}")
    assert list(tmp_path.iterdir()) == []


def test_place_finds_the_fastest_plan_within_a_budget(capsys):
    args = ["--profile", str(CONFIGS / "transformer_small.csv"), "--devices", str(CONFIGS / "cloud.yaml"),
            "--planner", "dp", "--target", "1000", "--format", "json"]
    code, out, _ = _run([*args, "--budget-per-hour", "20"], capsys)
    assert code == 0
    payload = json.loads(out)
    assert payload["objective"] == "max_throughput" and payload["budget_per_hour"] == 20
    assert payload["rental_per_hour"] <= 20 and payload["throughput"] > 8000
    code, out, err = _run([*args, "--budget-per-hour", "1"], capsys)
    assert code == 2 and out == ""
    assert err.strip().startswith("error: budget: the cheapest plan reaching 1000 samples/s rents")
