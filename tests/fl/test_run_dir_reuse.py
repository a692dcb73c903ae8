"""One run per run directory: reuse is refused, resume checks its checkpoint belongs to it, torn logs are harmless."""

import json

import pytest
import torch
import yaml

from fedfleet import api
from fedfleet.config import load_config
from fedfleet.data.datasets import load_digits
from fedfleet.errors import CheckpointError, ConfigError
from fedfleet.fl import resume_simulation, run_simulation
from fedfleet.fl.checkpoint import load_checkpoint, save_checkpoint
from fedfleet.fl.strategies import FedAvg
from fedfleet.models import build_model
from tests.fl.test_runs import StopAfter, without_wall_time
from tests.fl.test_validation import PoisonClient


def test_a_finished_run_is_not_overwritten(digits_config, tmp_path):
    run_simulation(load_config(digits_config), out_dir=tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    other = load_config(digits_config, ["train.lr=0.05"])
    for attempt in (lambda: run_simulation(other, out_dir=tmp_path),
                    lambda: api.run(other, out_dir=tmp_path)):
        with pytest.raises(ConfigError, match=r"already holds a run.*--overwrite") as caught:
            attempt()
        assert "\n" not in str(caught.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_overwrite_removes_the_earlier_run_so_resume_cannot_mix_them(digits_config, tmp_path):
    run_simulation(load_config(digits_config), out_dir=tmp_path)  # checkpoints every 2 rounds
    api.run(load_config(digits_config, ["checkpoint_every=0", "train.rounds=2"]), out_dir=tmp_path,
            overwrite=True)
    assert not (tmp_path / "checkpoint").exists()
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    with pytest.raises(CheckpointError, match="no checkpoint"):
        resume_simulation(tmp_path)


def test_overwrite_never_deletes_files_that_are_not_a_runs(digits_config, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match="not a run directory"):
            run_simulation(load_config(digits_config), out_dir=tmp_path, overwrite=overwrite)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(("name", "message"), [
    ("a-file", "is a file, not a folder"),
    ("a-file/run", "is a file, not a folder"),
])
def test_an_unusable_run_directory_is_refused_before_any_work(digits_config, tmp_path, name, message):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match=message):
        run_simulation(load_config(digits_config), out_dir=tmp_path / name)


def test_an_unwritable_run_directory_is_refused(digits_config):
    with pytest.raises(ConfigError, match="run directory /proc/fedfleet-run: cannot create"):
        run_simulation(load_config(digits_config), out_dir="/proc/fedfleet-run")


def interrupted_run(digits_config, tmp_path, name="cut", hooks=()):
    digits_config["train"].update(rounds=6, clients_per_round=8)
    config = load_config(digits_config)
    with pytest.raises(KeyboardInterrupt):
        run_simulation(config, out_dir=tmp_path / name, client_hooks=list(hooks), callbacks=[StopAfter(3)])
    return config, tmp_path / name


def test_resume_refuses_a_checkpoint_written_by_another_config(digits_config, tmp_path):
    _, run_dir = interrupted_run(digits_config, tmp_path)
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    written["train"]["lr"] = 0.5
    written["seed"] = 3
    (run_dir / "config.yaml").write_text(yaml.safe_dump(written))
    with pytest.raises(CheckpointError, match=rf"checkpoint in {run_dir} .*differs in seed, train\.lr") as caught:
        resume_simulation(run_dir)
    assert "\n" not in str(caught.value)


def test_resume_refuses_a_checkpoint_of_another_model(digits_config, tmp_path):
    _, run_dir = interrupted_run(digits_config, tmp_path)
    split = load_digits()
    other = build_model("cnn", split.train.input_shape, split.train.num_classes)
    with pytest.raises(CheckpointError, match="model size"):
        resume_simulation(run_dir, model=other)


def test_torn_last_lines_written_after_the_checkpoint_do_not_block_resume(digits_config, tmp_path):
    config, run_dir = interrupted_run(digits_config, tmp_path, hooks=[PoisonClient(3)])
    full = run_simulation(config, out_dir=tmp_path / "full", client_hooks=[PoisonClient(3)])
    for name in ("rejections.jsonl", "metrics.jsonl"):
        with (run_dir / name).open("a") as handle:
            handle.write('{"step": 3, "client_id": 3, "rea')  # killed mid-write
    resumed = resume_simulation(run_dir, client_hooks=[PoisonClient(3)])
    assert without_wall_time(resumed.history) == without_wall_time(full.history)
    assert (run_dir / "rejections.jsonl").read_text() == (tmp_path / "full" / "rejections.jsonl").read_text()
    on_disk = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert without_wall_time(on_disk) == without_wall_time(full.history)


def test_a_damaged_line_inside_rejections_is_one_clear_error(digits_config, tmp_path):
    _, run_dir = interrupted_run(digits_config, tmp_path, hooks=[PoisonClient(3)])
    lines = (run_dir / "rejections.jsonl").read_text().splitlines()
    assert len(lines) >= 2
    lines[0] = "\x00garbage"
    (run_dir / "rejections.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(CheckpointError, match=r"rejections\.jsonl line 1 is not a record"):
        resume_simulation(run_dir, client_hooks=[PoisonClient(3)])


def test_resume_refuses_parameters_of_the_wrong_size(digits_config, tmp_path):
    _, run_dir = interrupted_run(digits_config, tmp_path)
    state = load_checkpoint(run_dir / "checkpoint")
    state.params = torch.zeros(5)  # a hand-made checkpoint whose fingerprint still matches
    save_checkpoint(run_dir / "checkpoint", state)
    with pytest.raises(CheckpointError, match=r"parameters of shape \(5,\)"):
        resume_simulation(run_dir)


class NeedsMomentum(FedAvg):
    def load_state_dict(self, state):
        self.momentum = state["momentum"]


def test_a_strategy_state_the_strategy_cannot_load_is_one_clear_error(digits_config, tmp_path):
    _, run_dir = interrupted_run(digits_config, tmp_path)
    with pytest.raises(CheckpointError, match=r"strategy state this run cannot load \(KeyError: 'momentum'\)"):
        resume_simulation(run_dir, strategy=NeedsMomentum())
