"""``fedfleet vertical`` end to end on a tiny digits config, and its config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedfleet.cli.main import main
from fedfleet.vertical.config import load_vertical_config

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
    ],
)
def test_bad_config_is_a_one_line_error(override: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["vertical", str(CONFIG), "--set", override])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error
