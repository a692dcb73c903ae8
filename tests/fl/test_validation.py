import pytest
import torch

from fedfleet.config import load_config
from fedfleet.fl import run_simulation
from fedfleet.fl.messages import ClientUpdate
from fedfleet.fl.validation import validate_updates


def make(client_id, delta, num_samples=10):
    return ClientUpdate(client_id, delta, num_samples, 1, 0)


def healthy(n):
    return [make(i, torch.full((4,), 0.1 * (i + 1))) for i in range(n)]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (torch.tensor([1.0, float("nan"), 0.0, 0.0]), "NaN"),
        (torch.tensor([1.0, float("inf"), 0.0, 0.0]), "NaN or Inf"),
        (torch.zeros(3), "shape"),
        (torch.zeros(4, dtype=torch.float64), "float32"),
        (torch.full((4,), 1e6), "norm"),
    ],
)
def test_bad_updates_are_rejected_with_a_reason(bad, reason):
    accepted, rejected = validate_updates([*healthy(4), make(99, bad)], num_params=4, max_norm_ratio=10)
    assert [u.client_id for u in accepted] == [0, 1, 2, 3]
    assert len(rejected) == 1 and rejected[0].client_id == 99 and reason in rejected[0].reason


def test_nonpositive_sample_count_is_rejected():
    accepted, rejected = validate_updates([make(0, torch.zeros(4), num_samples=0)], 4, 10)
    assert not accepted and "num_samples" in rejected[0].reason


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


def test_overflowing_aggregate_keeps_the_previous_global_model(digits_config):
    config = load_config(digits_config)
    result = run_simulation(config, client_hooks=[HugeUpdates()])
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    # Round 1 moves the model to about 3e38 (finite); from round 2 on every sum overflows and is refused.
    cohort = config.train.clients_per_round
    assert result.summary["updates_accepted"] == cohort
    assert result.summary["updates_rejected"] == (config.train.rounds - 1) * cohort
