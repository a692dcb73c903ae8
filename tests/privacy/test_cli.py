import csv
import json
from pathlib import Path

import pytest

from fedfleet.cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "privacy"
MASK, OCCLUDE = str(CONFIGS / "mask_digits.yaml"), str(CONFIGS / "occlude_digits.yaml")
TINY = ["--set", "data.train_size=300", "--set", "model.epochs=3", "--set", "data.test_size=100"]


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_privacy_mask_writes_its_report(tmp_path, capsys):
    out = tmp_path / "mask"
    code, stdout, _ = _run(["privacy", "mask", MASK, *TINY,
                            "--set", "data.public_size=200", "--out", str(out), "--format", "json"], capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["candidates"] == 4 and summary["target_mask"]["family"]
    assert summary["holdout"]["images"] == 349  # digits test split: 449 images, 100 used for selection
    assert set(summary["holdout"]["chosen"]) == {"encrypted_accuracy", "original_accuracy"}
    for name in ("report.html", "summary.json", "candidates.csv", "key.json", "config.yaml",
                 "chosen_grid.png", "masks_accuracy.png"):
        assert (out / name).exists(), name


def test_privacy_occlude_writes_its_report(tmp_path, capsys):
    out = tmp_path / "occlude"
    code, stdout, err = _run(["privacy", "occlude", OCCLUDE, *TINY,
                              "--set", "eval_size=60", "--out", str(out)], capsys)
    assert code == 0
    assert "target region" in stdout and "report:" in stdout
    assert "scoring" in err  # progress goes to stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["baselines"]) == {"random", "centred"}
    assert set(summary["accuracy"]) == {"clear", "occluded", "retrained_occluded"}
    assert set(summary["holdout_accuracy"]) == {"chosen", "random", "centred"}
    for name in ("report.html", "candidates.csv", "target_region.json", "occlusion_scatter.png", "occlusion_grid.png"):
        assert (out / name).exists(), name


def test_unknown_config_key_is_a_one_line_error(capsys):
    code, _, err = _run(["privacy", "mask", MASK, "--set", "rule.max_acc=1"], capsys)
    assert code == 2
    assert err.strip() == ("error: unknown config key 'rule.max_acc'; check its spelling; "
                           "keys allowed here: name, max_original_accuracy, max_attack_ssim, max_attacker_accuracy, "
                           "require_qualified, max_linkage")


def test_unmeetable_rule_is_a_one_line_error_naming_the_best(tmp_path, capsys):
    code, _, err = _run(["privacy", "occlude", OCCLUDE, *TINY,
                         "--set", "eval_size=40", "--set", "rule.min_availability=1.0",
                         "--set", "retrain=false", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert "no occlusion region keeps availability >= 1" in err and "best available is" in err


def _key_job(out, capsys):
    code, stdout, err = _run(["privacy", "mask", MASK, *TINY, "--set", "data.public_size=200",
                              "--out", str(out), "--format", "json"], capsys)
    assert code == 0
    return json.loads((out / "key.json").read_text()), stdout + err


def test_mask_key_is_secret_and_stays_in_its_own_file(tmp_path, capsys):
    first, printed = _key_job(tmp_path / "a", capsys)
    second, _ = _key_job(tmp_path / "b", capsys)
    assert first["seed"] != second["seed"]  # same job seed, fresh keys
    assert first["seed"] >= 2**32 or second["seed"] >= 2**32  # 128-bit seeds, not 31-bit
    assert (tmp_path / "a" / "key.json").stat().st_mode & 0o777 == 0o600
    secret = str(first["seed"])
    assert secret not in printed
    written = [p for p in (tmp_path / "a").rglob("*") if p.is_file() and p.name != "key.json"]
    assert {p.name for p in written} >= {"summary.json", "candidates.csv", "report.html"}
    for path in written:
        assert secret.encode() not in path.read_bytes(), path.name


@pytest.mark.parametrize("override", ["candidates.1.strength=0", "candidates.3.weight=0"])
def test_identity_keys_are_refused(override, tmp_path, capsys):
    code, _, err = _run(["privacy", "mask", MASK, *TINY, "--set", override, "--out", str(tmp_path)], capsys)
    assert code == 2
    assert override.split("=")[0].rsplit(".", 1)[1] in err and len(err.strip().splitlines()) == 1


WEAK_JOB = """name: weak-masks
data: {dataset: digits, train_size: 300, test_size: 100, public_size: 200}
model: {name: mlp, epochs: 3, lr: 0.003}
original_models: [mlp, mlp]
candidates:
  - {family: sign, mode: sign_flip}
  - {family: sign, mode: multiply}
  - {family: checkerboard, mode: sign_flip}
rule: {max_original_accuracy: 0.5}
attacks: {kinds: [average, known_plaintext, invariant], keys: 2}
"""


def _excess(row):
    """The rule's worst figure above its cap, recomputed from candidates.csv."""
    return max(float(row["original_accuracy"]) - 0.5, float(row["worst_ssim"]) - 0.5,
               float(row["worst_attacker_accuracy"]) - 0.3)


def test_all_weak_candidates_give_the_least_bad_with_a_warning(tmp_path, capsys):
    config = tmp_path / "weak.yaml"
    config.write_text(WEAK_JOB)
    code, stdout, err = _run(["privacy", "mask", str(config), "--out", str(tmp_path / "run")], capsys)
    assert code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    with (tmp_path / "run" / "candidates.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    least_bad = summary["chosen"]["mask"]
    chosen_row = next(row for row in rows if row["mask"] == least_bad)
    assert summary["qualified"] is False and _excess(chosen_row) == min(map(_excess, rows))  # ties: any of them
    assert summary["warning"].startswith("no mask meets the rule") and f"best available is {least_bad}" in \
        summary["warning"]
    assert "warning: no mask meets the rule" in err and f"target mask {least_bad} (least bad" in stdout
    assert "Warning: no mask meets the rule" in (tmp_path / "run" / "report.html").read_text()
    secret = str(json.loads((tmp_path / "run" / "key.json").read_text())["seed"])
    assert secret not in stdout + err and secret not in json.dumps(summary)


def test_all_weak_candidates_with_require_qualified_exit_2(tmp_path, capsys):
    config = tmp_path / "weak.yaml"
    config.write_text(WEAK_JOB)
    code, _, err = _run(["privacy", "mask", str(config), "--set", "rule.require_qualified=true",
                         "--out", str(tmp_path / "run"), "--format", "json"], capsys)
    assert code == 2
    assert err.startswith("error: no mask meets the rule") and "best available is" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run" / "key.json").exists()
