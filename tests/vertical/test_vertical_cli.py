"""``fedfleet vertical`` end to end on a tiny digits config, its config and --out errors, its files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedfleet.cli.main import main
from fedfleet.cli.vertical_cmd import open_run_dir, write_run_dir
from fedfleet.vertical.config import load_vertical_config
from fedfleet.vertical.study import StudyResult

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "vertical" / "digits.yaml"
TINY = ["train.epochs=2", "robustness.corruption_fractions=[0.5]", "robustness.pgd_steps=2",
        "robustness.lipschitz_check_steps=3", "baselines.centralised_hidden=16"]


def _argv(*extra: str) -> list[str]:
    return [arg for pair in TINY for arg in ("--set", pair)] + list(extra)


def test_vertical_writes_the_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["vertical", str(CONFIG), *_argv("--out", str(tmp_path / "run"), "--format", "json")])
    assert exit_info.value.code in (0, None)
    printed = json.loads(capsys.readouterr().out)
    run = tmp_path / "run"
    assert printed["run_dir"] == str(run)
    for name in ("config.yaml", "summary.json", "metrics.jsonl", "model.safetensors", "report.html",
                 "attack_noise.png", "attack_pgd.png", "attack_scale.png", "corruption.png"):
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["accuracy"]) == {"lipschitz", "unconstrained", "centralised"}
    assert summary["certified_bound"] == pytest.approx(4.0, rel=1e-5)
    assert all(check["bound_holds"] == 1.0 for check in summary["lipschitz_check"].values())
    assert summary["alignment"]["train"]["overlap"] < summary["alignment"]["train"]["party_rows"][0]
    assert summary["alignment_method"] == "psi"
    leakage = summary["label_leakage"]
    assert leakage["gradient_noise"] == 0.0 and len(leakage["recovery_by_epoch"]) == 2
    assert leakage["recovery_rate"] > leakage["chance_rate"] >= leakage["majority_rate"] - 1e-9
    assert summary["alignment_bytes_up"] == sum(summary["alignment"][s]["bytes_up"] for s in ("train", "test")) > 0
    assert summary["bytes_up"] > summary["alignment_bytes_up"] > 0
    assert summary["bytes_down"] > summary["alignment_bytes_down"] > 0
    assert summary["bytes_eval_up"] > summary["bytes_eval_down"] > 0  # split inference: embeddings up, rows down
    assert {row["attack"] for row in summary["robustness"]["attacks"]} == {"noise", "pgd", "scale"}
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 1, 2]
    assert load_vertical_config(run / "config.yaml").train.epochs == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.lipschitzz=2", "unknown config key 'model.lipschitzz'"),
        ("model.top_hidden=7", "must be even"),
        ("robustness.attacked_party=2", "attacked_party"),
        ("train.lr=-1", "train.lr"),
        ("robustness.corruption_fractions=[0]", "corruption_fractions must lie in (0, 1]"),
        ("robustness.pgd=[-0.1]", "must be >= 0"),
        ("alignment.method=md5", "alignment.method"),
        ("protection.embedding_clip=0", "protection.embedding_clip"),
        ("alignment.reveal=size", "only the counts were revealed"),
    ],
)
def test_bad_config_is_a_one_line_error(override: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["vertical", str(CONFIG), "--set", override])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_out_that_cannot_be_a_folder_is_a_one_line_error(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "taken.txt"
    existing.write_text("keep me\n")
    out = existing if where == "file" else existing / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["vertical", str(CONFIG), *_argv("--out", str(out))])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: --out ") and str(out) in error and "\n" not in error
    assert existing.read_text() == "keep me\n"


def test_run_dir_writes_strict_json_metrics(tmp_path: Path) -> None:
    summary = {"accuracy": {"lipschitz": 0.5}, "certified_bound": 4.0, "bytes_up": 1, "bytes_down": 1,
               "lipschitz_check": {}, "passive_embedding_norm": {"lipschitz": 1.0}, "alignment": {}}
    history = [{"model": "lipschitz", "epoch": 1, "train_loss": float("nan"), "test_accuracy": 0.5}]
    config = load_vertical_config(CONFIG)
    write_run_dir(open_run_dir(tmp_path / "run"), config, StudyResult(summary, history))
    (line,) = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(line)["train_loss"] is None  # a diverged loss is null, not the non-JSON NaN
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["robustness"]["attacks"] == []
    assert load_vertical_config(tmp_path / "run" / "config.yaml") == config


def test_text_output_names_the_label_leakage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["vertical", str(CONFIG), *_argv("--out", str(tmp_path / "run"))])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "label leakage: the passive party recovers" in out and "chance" in out


def test_http_transport_runs_one_process_per_party(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["vertical", str(CONFIG), "--set", "train.epochs=1", "--set", "data.max_train=200", "--set",
              "data.max_test=50", "--transport", "http", "--out", str(out), "--format", "json"])
    assert exit_info.value.code in (0, None)
    printed = json.loads(capsys.readouterr().out)
    assert printed["transport"] == "http" and printed["epochs"] == 1 and printed["bytes_eval_up"] > 0
    for party in ("party-active", "party-passive-0"):
        assert {"data.safetensors", "model.safetensors", "checkpoint"} <= {p.name for p in (out / party).iterdir()}
    assert json.loads((out / "summary.json").read_text())["final_accuracy"] == printed["final_accuracy"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["vertical", str(CONFIG), "--resume"], "--resume needs --transport http"),
        (["vertical-party", "--role", "active", "--data", "d", "--dir", "{tmp}"], "needs --config and one --peer"),
        (["vertical-party", "--role", "passive", "--data", "d", "--dir", "{tmp}", "--listen", "8470"],
         "must be HOST:PORT"),
        (["vertical-party", "--role", "passive", "--data", "{tmp}/none.safetensors", "--dir", "{tmp}"],
         "party data file"),
    ],
)
def test_party_command_errors_are_one_line(argv: list[str], message: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([arg.replace("{tmp}", str(tmp_path)) for arg in argv])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error
