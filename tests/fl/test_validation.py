import numpy as np
import pytest
import torch

from fedfleet.config import load_config
from fedfleet.fl import run_simulation
from fedfleet.fl.messages import ClientUpdate, LocalTrainingPlan
from fedfleet.fl.strategies import FedAvg
from fedfleet.fl.validation import ServerKnowledge, validate_updates

PLAN = LocalTrainingPlan(epochs=1, batch_size=10)


def server(sizes=(10, 10, 10, 10, 10), global_params=None):
    """Clients of 10 samples (one step each), a global model of norm 2 over 4 parameters."""
    params = torch.ones(4) if global_params is None else global_params
    sizes = np.array(sizes + (10,) * (100 - len(sizes)))
    return ServerKnowledge(params, sizes, PLAN)


def make(client_id, delta, num_samples=10, local_steps=1):
    return ClientUpdate(client_id, delta, num_samples, local_steps, 0)


def healthy(n):
    return [make(i, torch.full((4,), 0.1 * (i + 1))) for i in range(n)]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (make(99, torch.tensor([1.0, float("nan"), 0.0, 0.0])), "NaN"),
        (make(99, torch.tensor([1.0, float("inf"), 0.0, 0.0])), "NaN or Inf"),
        (make(99, torch.zeros(3)), "shape"),
        (make(99, torch.zeros(4, dtype=torch.float64)), "float32"),
        (make(99, torch.full((4,), 1e6)), "global model's norm"),
        (make(99, torch.full((4,), 5.0)), "cohort median"),
        (make(99, torch.zeros(4), num_samples=1000), "num_samples is 1000, the client holds 10"),
        (make(99, torch.zeros(4), num_samples=0), "num_samples is 0"),
        (make(99, torch.zeros(4), local_steps=3), "local_steps is 3, the plan implies 1"),
        (make(-1, torch.zeros(4)), "client_id -1 is not a client"),
    ],
)
def test_bad_updates_are_rejected_with_a_reason(bad, reason):
    accepted, rejected = validate_updates([*healthy(4), bad], server(), max_norm_ratio=10)
    assert [u.client_id for u in accepted] == [0, 1, 2, 3]
    assert len(rejected) == 1 and rejected[0].client_id == bad.client_id and reason in rejected[0].reason


def test_a_huge_update_is_rejected_even_in_a_cohort_of_two():
    accepted, rejected = validate_updates([*healthy(1), make(99, torch.full((4,), 1e30))], server(), 10)
    assert [u.client_id for u in accepted] == [0]
    assert [r.client_id for r in rejected] == [99]


def test_an_honest_client_with_much_more_data_is_kept():
    # Twenty times the data, twenty times the steps, fifteen times the median norm: honest, not an outlier.
    big = make(4, torch.full((4,), 1.5), num_samples=200, local_steps=20)
    updates = [*(make(i, torch.full((4,), 0.1)) for i in range(4)), big]
    accepted, rejected = validate_updates(updates, server(sizes=(10, 10, 10, 10, 200)), 10)
    assert not rejected and len(accepted) == 5


def test_a_client_is_kept_when_its_total_norm_is_ordinary():
    # Per step it stands out (the big clients' many steps pull the per-step median down), in total it does not.
    big = [make(i, torch.full((4,), 0.5), num_samples=200, local_steps=20) for i in range(3)]
    small = [make(3, torch.full((4,), 0.1)), make(4, torch.full((4,), 0.3))]
    sizes = (200, 200, 200, 10, 10)
    accepted, rejected = validate_updates([*big, *small], server(sizes=sizes), 10)
    assert not rejected and len(accepted) == 5


def test_a_zero_global_model_skips_only_the_global_norm_check():
    accepted, rejected = validate_updates(healthy(2), server(global_params=torch.zeros(4)), 10)
    assert len(accepted) == 2 and not rejected


class PoisonClient:
    """Client hook that turns one client's update into NaNs."""

    def __init__(self, client_id):
        self.client_id = client_id

    def __call__(self, task, update):
        if update.client_id != self.client_id:
            return update
        return ClientUpdate(update.client_id, torch.full_like(update.delta, float("nan")),
                            update.num_samples, update.local_steps, update.base_version)


def test_poisoned_client_is_counted_and_never_averaged(digits_config):
    digits_config["train"]["clients_per_round"] = 8
    config = load_config(digits_config)
    result = run_simulation(config, client_hooks=[PoisonClient(3)])
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert result.summary["updates_rejected"] == config.train.rounds
    assert result.summary["updates_accepted"] == config.train.rounds * 7
    assert result.history[-1]["updates_rejected"] == config.train.rounds


class HugeUpdates:
    """Client hook giving every client the same finite update whose sum overflows float32."""

    def __call__(self, task, update):
        return ClientUpdate(update.client_id, torch.full_like(update.delta, 3e38),
                            update.num_samples, update.local_steps, update.base_version)


def test_a_coordinated_huge_cohort_is_rejected_whole(digits_config, tmp_path):
    config = load_config(digits_config)
    result = run_simulation(config, out_dir=tmp_path, client_hooks=[HugeUpdates()])
    initial = run_simulation(load_config(digits_config, ["train.rounds=1"]), client_hooks=[HugeUpdates()])
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert result.summary["updates_accepted"] == 0
    cohort = config.train.clients_per_round
    assert result.summary["updates_rejected"] == config.train.rounds * cohort
    for ours, start in zip(result.model.parameters(), initial.model.parameters(), strict=True):
        torch.testing.assert_close(ours, start, rtol=0, atol=0)  # the model never moved
    lines = (tmp_path / "rejections.jsonl").read_text().splitlines()
    assert len(lines) == config.train.rounds * cohort and "global model's norm" in lines[0]


class NonFiniteFedAvg(FedAvg):
    """A strategy whose aggregate is NaN from round 3 on."""

    def aggregate(self, global_params, updates):
        if updates[0].base_version >= 2:
            return torch.full_like(global_params, float("nan"))
        return super().aggregate(global_params, updates)


def test_a_non_finite_aggregate_keeps_the_previous_global_model(digits_config):
    config = load_config(digits_config)
    result = run_simulation(config, strategy=NonFiniteFedAvg())
    after_two = run_simulation(load_config(digits_config, ["train.rounds=2"]))
    for ours, reference in zip(result.model.parameters(), after_two.model.parameters(), strict=True):
        torch.testing.assert_close(ours, reference, rtol=0, atol=0)
    cohort = config.train.clients_per_round
    assert result.summary["updates_accepted"] == 2 * cohort
    assert result.summary["updates_rejected"] == (config.train.rounds - 2) * cohort
