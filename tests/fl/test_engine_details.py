"""Engine details each guarded by a test: evaluation schedule, traffic counts, seeds, FedProx."""

import copy

import numpy as np
import pytest
import torch

from fedfleet import api
from fedfleet.config import DataConfig, load_config
from fedfleet.data.datasets import load_dataset
from fedfleet.fl import run_simulation
from fedfleet.fl.client import LocalTrainer, proximal_term
from fedfleet.fl.federated_data import build_federated_data
from fedfleet.fl.fleet import BYTES_PER_PARAM
from fedfleet.fl.history import summarise
from fedfleet.fl.messages import LocalTrainingPlan, TrainTask
from fedfleet.fl.params import get_flat
from fedfleet.fl.sync_runner import task_seed
from fedfleet.models import build_model


def test_the_last_round_is_always_evaluated(digits_config):
    result = run_simulation(load_config(digits_config, ["train.rounds=5", "train.eval_every=3"]))
    assert [r["round"] for r in result.history] == [3, 5]


def test_bytes_count_only_what_travelled(digits_config):
    digits_config["fleet"] = {"profile": "heterogeneous", "speed_spread": 50, "base_speed": 50}
    result = run_simulation(load_config(digits_config, ["train.deadline_s=2.0"]))
    summary = result.summary
    message = sum(p.numel() for p in result.model.parameters()) * BYTES_PER_PARAM
    returned = summary["updates_accepted"] + summary["updates_rejected"]
    assert summary["dropped"] > 0
    assert summary["bytes_up"] == returned * message  # dropped devices never upload
    assert summary["bytes_down"] == (returned + summary["dropped"]) * message


def test_time_to_target_is_the_first_time_it_is_reached():
    records = [{"virtual_time_s": t, "wall_time_s": 0.0, "test_accuracy": a, "updates_accepted": 0,
                "updates_rejected": 0, "bytes_up": 0, "bytes_down": 0}
               for t, a in [(1.0, 0.5), (2.0, 0.8), (3.0, 0.7), (4.0, 0.9)]]
    assert summarise(records, 0.75)["time_to_target_s"] == 2.0
    assert summarise(records, 0.95)["time_to_target_s"] is None


def test_test_fraction_subsamples_the_test_set():
    full = build_federated_data(DataConfig(dataset="digits", num_clients=4), seed=0)
    part = build_federated_data(DataConfig(dataset="digits", num_clients=4, test_fraction=0.5), seed=0)
    assert len(part.test) == len(full.test) // 2


def test_federated_data_follows_the_seed():
    config = DataConfig(dataset="digits", num_clients=6)
    a, b = build_federated_data(config, seed=0), build_federated_data(config, seed=1)
    assert [len(c) for c in a.clients] != [len(c) for c in b.clients]


def test_offline_devices_are_never_selected(digits_config):
    full = run_simulation(load_config(digits_config))
    sparse = run_simulation(load_config(digits_config, ["fleet.availability=0.3"]))
    cohort, rounds = digits_config["train"]["clients_per_round"], digits_config["train"]["rounds"]
    assert full.summary["updates_accepted"] == cohort * rounds
    assert sparse.summary["updates_accepted"] < cohort * rounds


def test_batch_order_seed_depends_on_seed_round_and_client():
    seeds = {task_seed(s, r, c) for s in range(3) for r in range(3) for c in range(3)}
    assert len(seeds) == 27


def test_proximal_term_value():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 4.0]]))
    anchor = [torch.zeros(1, 2)]
    assert float(proximal_term(model, anchor, mu=0.5).detach()) == pytest.approx(0.5 * 0.5 * 25.0)


def test_fedprox_keeps_local_training_near_the_global_model():
    data = load_dataset("digits").train.subset(torch.arange(200))
    torch.manual_seed(0)
    model = build_model("mlp", data.input_shape, 10)
    params = get_flat(model)
    deltas = {}
    for mu in (0.0, 1.0):
        plan = LocalTrainingPlan(epochs=3, batch_size=16, lr=0.1, prox_mu=mu)
        update = LocalTrainer(copy.deepcopy(model)).train(TrainTask(0, params, 0, plan, 7), data)
        deltas[mu] = float(update.delta.norm())
    assert deltas[1.0] < 0.8 * deltas[0.0]


def test_api_accepts_a_single_override_string(tmp_path):
    result = api.run({"data": {"dataset": "digits", "num_clients": 4}, "model": {"name": "mlp"},
                      "train": {"clients_per_round": 2}}, overrides="train.rounds=2", out_dir=tmp_path, report=False)
    assert len(result.history) == 2
    assert np.isfinite(result.summary["final_accuracy"])


def test_a_round_with_no_device_online_waits_out_the_deadline(digits_config):
    result = run_simulation(load_config(digits_config, ["fleet.availability=0.0001", "train.deadline_s=5"]))
    assert result.summary["updates_accepted"] == 0
    assert result.summary["virtual_time_s"] == 5.0 * digits_config["train"]["rounds"]
