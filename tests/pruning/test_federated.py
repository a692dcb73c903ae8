"""Pruning inside a federated run: smaller models on the wire and on devices, resume, workers, files."""

from __future__ import annotations

import json

import pytest
import torch

from fedfleet.config import load_config
from fedfleet.errors import ConfigError
from fedfleet.fl import build_federated_data, build_runner, resume_simulation, run_simulation
from fedfleet.fl.checkpoint import load_checkpoint
from fedfleet.models import build_model
from fedfleet.pruning import PruningError, PruningHook, channel_counts, count_flops, load_pruned_model
from fedfleet.report.runs import write_runs_report
from tests.fl.test_runs import StopAfter, without_wall_time

SHAPE = (1, 8, 8)


def increments(records: list[dict], key: str) -> list[float]:
    """Each round's share of a cumulative metric."""
    values = [record[key] for record in records]
    return [b - a for a, b in zip([0, *values], values, strict=False)]


@pytest.fixture
def pruning_config(digits_config):
    digits_config["model"] = {"name": "cnn"}
    digits_config["train"].update(rounds=8)
    digits_config["fleet"] = {"profile": "uniform", "fluctuation": 0.0}
    digits_config["pruning"] = {"enabled": True, "start_round": 2, "recovery_rounds": 2, "delta": 1.0,
                                "validation_fraction": 0.2}
    return digits_config


def test_pruned_clients_train_a_smaller_model_and_cost_less_time_and_bytes(pruning_config):
    pruning_config["fleet"] |= {"bandwidth_mbps": 1e9}  # transfers take no time: rounds last their compute
    pruned = run_simulation(load_config(pruning_config))
    plain = run_simulation(load_config(pruning_config, ["pruning.enabled=false"]))
    assert pruned.summary["flops_reduction"] > 0.2
    params = [r["model_params"] for r in pruned.history]
    assert params[0] > params[-1] and params == sorted(params, reverse=True)
    assert sum(p.numel() for p in pruned.model.parameters()) == params[-1]
    assert increments(pruned.history, "bytes_up")[-1] < increments(pruned.history, "bytes_up")[0]
    times, pruned_times = increments(plain.history, "virtual_time_s"), increments(pruned.history, "virtual_time_s")
    assert pruned_times[0] == pytest.approx(times[0])  # the same cohort before pruning
    scale = count_flops(pruned.model, SHAPE, training=True) / count_flops(plain.model, SHAPE, training=True)
    assert pruned_times[-1] == pytest.approx(times[-1] * scale, rel=1e-6)  # compute scales with training FLOPs


def test_the_runner_reports_accuracy_on_the_test_images_outside_the_validation_split(pruning_config):
    config = load_config(pruning_config)
    runner = build_runner(config)
    full = build_federated_data(config.data, config.seed).test
    held = runner.parts.server_hooks[0].validation
    assert len(runner.parts.data.test) + len(held) == len(full)
    assert runner.parts.data.validation is held


def test_resume_rebuilds_the_pruned_architecture_and_continues_bit_for_bit(pruning_config, tmp_path):
    config = load_config(pruning_config)
    full = run_simulation(config, out_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_simulation(config, out_dir=tmp_path / "cut", callbacks=[StopAfter(5)])
    state = load_checkpoint(tmp_path / "cut" / "checkpoint")
    assert state.step == 4 and state.params.numel() < full.history[0]["model_params"]
    resumed = resume_simulation(tmp_path / "cut")
    assert without_wall_time(resumed.history) == without_wall_time(full.history)
    assert resumed.summary["pruning_decisions"] == full.summary["pruning_decisions"]
    for ours, theirs in zip(resumed.model.parameters(), full.model.parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_worker_processes_train_the_pruned_model_to_the_same_result(pruning_config):
    one = run_simulation(load_config(pruning_config, ["backend.workers=1"]))
    two = run_simulation(load_config(pruning_config, ["backend.workers=2"]))
    assert without_wall_time(two.history) == without_wall_time(one.history)


def test_model_file_of_a_pruned_run_loads_into_the_pruned_architecture(pruning_config, tmp_path):
    result = run_simulation(load_config(pruning_config), out_dir=tmp_path)
    loaded = load_pruned_model(tmp_path / "model.safetensors", build_model("cnn", SHAPE, 10), SHAPE)
    assert channel_counts(loaded, SHAPE) == channel_counts(result.model, SHAPE)
    x = torch.rand(5, *SHAPE)
    assert torch.equal(loaded.eval()(x), result.model.eval()(x))
    with pytest.raises(PruningError, match="does not fit"):
        load_pruned_model(tmp_path / "model.safetensors", build_model("lenet5", SHAPE, 10), SHAPE)


def test_validation_is_carved_from_the_test_set_and_never_overlaps_it(pruning_config):
    config = load_config(pruning_config)
    data = build_federated_data(config.data, config.seed)
    split = data.with_validation(0.2, config.seed)
    assert split.validation is not None
    assert len(split.validation) + len(split.test) == len(data.test)
    seen = {tuple(row.tolist()) for row in split.validation.x.reshape(len(split.validation), -1)}
    assert not any(tuple(row.tolist()) in seen for row in split.test.x.reshape(len(split.test), -1)[:200])
    with pytest.raises(ConfigError, match="validation_fraction"):
        data.with_validation(1e-6, 0)


def test_pruning_is_refused_where_it_cannot_work(pruning_config):
    with pytest.raises(ConfigError, match=r"train\.mode=sync"):
        load_config(pruning_config, ["train.mode=async", "strategy.name=fedasync"])
    with pytest.raises(PruningError, match="prunable conv"):
        run_simulation(load_config(pruning_config, ["model.name=mlp"]))


def test_the_report_plots_rates_and_model_size(pruning_config, tmp_path):
    run_simulation(load_config(pruning_config), out_dir=tmp_path / "run")
    page = write_runs_report([tmp_path / "run"], tmp_path / "report.html")
    text = page.read_text()
    assert "Pruning" in text and "report_pruning_rates.png" in text
    assert (tmp_path / "report_model_size.png").stat().st_size > 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["pruning_decisions"] and 0 < summary["flops_reduction"] < 1


def test_the_cli_runs_a_pruned_job_and_refuses_pruning_with_async(pruning_config, tmp_path, capsys):
    import yaml

    from fedfleet.cli.main import main

    path = tmp_path / "pruning.yaml"
    path.write_text(yaml.safe_dump(pruning_config))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(path), "--out", str(tmp_path / "run"), "--format", "json"])
    assert exit_info.value.code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["flops_reduction"] > 0 and payload["pruning_decisions"]
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(path), "--set", "train.mode=async", "--set", "strategy.name=fedasync"])
    assert exit_info.value.code == 2
    assert "pruning.enabled needs train.mode=sync" in capsys.readouterr().err


def test_hrank_importance_runs_in_a_federation(pruning_config):
    result = run_simulation(load_config(pruning_config, ["pruning.importance=hrank"]))
    assert result.summary["flops_reduction"] > 0.2


def batch_norm_cnn() -> torch.nn.Sequential:
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))


@pytest.mark.parametrize("enabled", [False, True])
def test_a_batch_norm_model_resumes_with_and_without_pruning(pruning_config, tmp_path, enabled):
    pruning_config["pruning"]["enabled"] = enabled
    config = load_config(pruning_config)
    full = run_simulation(config, model=batch_norm_cnn(), out_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_simulation(config, model=batch_norm_cnn(), out_dir=tmp_path / "cut", callbacks=[StopAfter(5)])
    resumed = resume_simulation(tmp_path / "cut", model=batch_norm_cnn())
    assert without_wall_time(resumed.history) == without_wall_time(full.history)


def fake_accuracy(self, model):
    """Accuracy that falls with the share of filters removed: large cuts are restored."""
    kept = sum(channel_counts(model, SHAPE).values()) / sum(self.original_channels.values())
    return 0.9 - 0.5 * (1 - kept)


def test_restores_inside_a_federation_resume_bit_for_bit_from_every_checkpoint(pruning_config, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setattr(PruningHook, "_accuracy", fake_accuracy)
    pruning_config["pruning"] |= {"delta": 0.05, "recovery_rounds": 1, "start_round": 1}
    pruning_config["train"]["rounds"] = 7
    pruning_config["checkpoint_every"] = 1
    config = load_config(pruning_config)
    full = run_simulation(config, out_dir=tmp_path / "full")
    decisions = [d["decision"].split(" ")[0] for d in full.summary["pruning_decisions"]]
    assert "restored" in decisions and "kept" in decisions
    for stop in range(2, 7):
        cut = tmp_path / f"cut{stop}"
        with pytest.raises(KeyboardInterrupt):
            run_simulation(config, out_dir=cut, callbacks=[StopAfter(stop)])
        resumed = resume_simulation(cut)
        assert without_wall_time(resumed.history) == without_wall_time(full.history), stop
        assert resumed.summary["pruning_decisions"] == full.summary["pruning_decisions"]


def test_a_damaged_pruning_state_is_one_clear_error(pruning_config, tmp_path):
    import json as json_module

    from fedfleet.errors import CheckpointError

    with pytest.raises(KeyboardInterrupt):
        run_simulation(load_config(pruning_config), out_dir=tmp_path, callbacks=[StopAfter(5)])
    manifest = tmp_path / "checkpoint" / "state.json"
    text = manifest.read_text()
    assert '"phase": "recovering"' in text
    manifest.write_text(text.replace('"phase": "recovering"', '"phase": "bogus"'))
    with pytest.raises(CheckpointError, match="server-hook state"):
        resume_simulation(tmp_path)
    json_module.loads(text)  # the untouched manifest was valid JSON
