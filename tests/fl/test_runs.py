"""Determinism, resume-equals-uninterrupted, deadlines and the run directory contract."""

import json

import pytest

from fedfleet.config import load_config
from fedfleet.errors import CheckpointError, ConfigError
from fedfleet.fl import resume_simulation, run_simulation
from fedfleet.fl.callbacks import BaseCallback
from fedfleet.fl.checkpoint import load_checkpoint
from fedfleet.fl.run_dir import RunDirectory

REQUIRED_KEYS = {"round", "virtual_time_s", "wall_time_s", "test_accuracy", "test_loss",
                 "updates_accepted", "updates_rejected", "bytes_up", "bytes_down"}


def without_wall_time(records):
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in records]


def test_same_seed_same_metrics(digits_config, tmp_path):
    config = load_config(digits_config)
    a = run_simulation(config, out_dir=tmp_path / "a")
    b = run_simulation(config, out_dir=tmp_path / "b")
    assert without_wall_time(a.history) == without_wall_time(b.history)
    other = run_simulation(load_config(digits_config, ["seed=1"]))
    assert without_wall_time(other.history) != without_wall_time(a.history)


def test_run_directory_contract(digits_config, tmp_path):
    run_simulation(load_config(digits_config), out_dir=tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(set(r) >= REQUIRED_KEYS for r in records)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"final_accuracy", "best_accuracy", "virtual_time_s", "wall_time_s", "time_to_target_s"} <= set(summary)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "checkpoint" / "state.json").exists()
    assert len(list((tmp_path / "checkpoint").glob("tensors-*.safetensors"))) == 1
    assert load_config(tmp_path / "config.yaml") == load_config(digits_config)


class StopAfter(BaseCallback):
    def __init__(self, round_index):
        self.round_index = round_index

    def on_step_end(self, step, record):
        if step == self.round_index:
            raise KeyboardInterrupt


def test_resume_equals_uninterrupted(digits_config, tmp_path):
    digits_config["train"]["rounds"] = 6
    config = load_config(digits_config)
    full = run_simulation(config, out_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_simulation(config, out_dir=tmp_path / "cut", callbacks=[StopAfter(3)])
    assert load_checkpoint(tmp_path / "cut" / "checkpoint").step == 2
    resumed = resume_simulation(tmp_path / "cut")
    assert without_wall_time(resumed.history) == without_wall_time(full.history)
    on_disk = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert without_wall_time(on_disk) == without_wall_time(full.history)
    for ours, theirs in zip(resumed.model.parameters(), full.model.parameters(), strict=True):
        assert (ours == theirs).all()


def test_resume_without_checkpoint_is_clear(tmp_path, digits_config):
    digits_config["checkpoint_every"] = 0
    run_simulation(load_config(digits_config), out_dir=tmp_path)
    with pytest.raises(CheckpointError, match="checkpoint_every"):
        resume_simulation(tmp_path)


def test_truncated_checkpoint_is_clear(tmp_path, digits_config):
    run_simulation(load_config(digits_config), out_dir=tmp_path)
    state = tmp_path / "checkpoint" / "state.json"
    whole = state.read_bytes()
    state.write_bytes(whole[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        resume_simulation(tmp_path)
    state.write_bytes(whole)
    (tensors,) = (tmp_path / "checkpoint").glob("tensors-*.safetensors")
    tensors.write_bytes(tensors.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        resume_simulation(tmp_path)


def test_deadline_drops_slow_devices(digits_config):
    digits_config["fleet"] = {"profile": "heterogeneous", "speed_spread": 50, "base_speed": 50}
    free = run_simulation(load_config(digits_config))
    tight = run_simulation(load_config(digits_config, ["train.deadline_s=2.0"]))
    assert free.summary["dropped"] == 0 and tight.summary["dropped"] > 0
    assert tight.summary["virtual_time_s"] <= 4 * 2.0 + 1e-9
    assert tight.summary["virtual_time_s"] < free.summary["virtual_time_s"]


def test_fedprox_and_fednova_run(digits_config):
    for name in ("fedprox", "fednova"):
        result = run_simulation(load_config(digits_config, [f"strategy.name={name}"]))
        assert result.summary["strategy"] == name and result.summary["final_accuracy"] > 0.1


def test_a_diverged_loss_is_written_as_null(tmp_path):
    directory = RunDirectory(tmp_path)
    directory.append_metrics({"round": 1, "test_loss": float("nan"), "train_loss": float("inf"), "test_accuracy": 0.1})
    text = (tmp_path / "metrics.jsonl").read_text()
    assert json.loads(text) == {"round": 1, "test_loss": None, "train_loss": None, "test_accuracy": 0.1}
    assert "NaN" not in text and "Infinity" not in text


def test_resume_keeps_one_rejection_record_per_rejected_update(digits_config, tmp_path):
    from tests.fl.test_validation import PoisonClient

    digits_config["train"].update(rounds=6, clients_per_round=8)
    config = load_config(digits_config)
    run_simulation(config, out_dir=tmp_path / "full", client_hooks=[PoisonClient(3)])
    with pytest.raises(KeyboardInterrupt):
        run_simulation(config, out_dir=tmp_path / "cut", client_hooks=[PoisonClient(3)], callbacks=[StopAfter(3)])
    resume_simulation(tmp_path / "cut", client_hooks=[PoisonClient(3)])
    full = (tmp_path / "full" / "rejections.jsonl").read_text()
    assert (tmp_path / "cut" / "rejections.jsonl").read_text() == full
    assert len(full.splitlines()) == 6 and '"client_id": 3' in full


def test_evaluation_uses_eval_threads_and_gives_the_same_accuracy(digits_config, monkeypatch):
    import torch

    import fedfleet.fl.client as client

    seen: list[int] = []
    inner = client._evaluate

    def spy(model, data, batch_size):
        seen.append(torch.get_num_threads())
        return inner(model, data, batch_size)

    monkeypatch.setattr(client, "_evaluate", spy)
    one = run_simulation(load_config(digits_config, ["backend.eval_threads=1"]))
    two = run_simulation(load_config(digits_config, ["backend.eval_threads=2"]))
    assert seen == [1] * 4 + [2] * 4 and torch.get_num_threads() == 1  # restored after each evaluation
    assert [r["test_accuracy"] for r in one.history] == [r["test_accuracy"] for r in two.history]
    with pytest.raises(ConfigError, match="eval_threads"):
        load_config(digits_config, ["backend.eval_threads=0"])
