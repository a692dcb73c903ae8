"""Robust aggregation and the validation history in whole runs: the issue's attacks, resume, async, pass-through."""

import json

import pytest
import torch

from fedfleet.config import load_config
from fedfleet.errors import ConfigError
from fedfleet.fl import resume_simulation, run_simulation
from fedfleet.fl.attacks import ModelPoisoning, SignFlipToNorm, choose_attackers
from fedfleet.fl.messages import ClientUpdate, TrainTask
from tests.fl.test_async import async_config
from tests.fl.test_runs import StopAfter, without_wall_time

ATTACKERS = {0, 1}


class Sent:
    """Client hook recording (round, client) of every update that reaches the server."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, int]] = []

    def __call__(self, task: TrainTask, update: ClientUpdate) -> ClientUpdate:
        self.updates.append((task.base_version + 1, update.client_id))
        return update


def two_per_round(digits_config, *overrides):
    """The issue's setting: two clients per round, so the cohort has no median of its own."""
    digits_config["data"]["num_clients"] = 10
    digits_config["fleet"] = {"profile": "uniform"}
    digits_config["train"].update(rounds=20, clients_per_round=2)
    return load_config(digits_config, list(overrides))


def attacked_run(config, out_dir):
    sent = Sent()
    result = run_simulation(config, out_dir=out_dir, client_hooks=[SignFlipToNorm(ATTACKERS, 9.5), sent])
    lines = (out_dir / "rejections.jsonl").read_text().splitlines() if (out_dir / "rejections.jsonl").exists() else []
    rejected = {(r["step"], r["client_id"]) for r in map(json.loads, lines)}
    return result, sent.updates, rejected


def test_the_issue_scenario_recovers_with_auto_clipping_and_honest_clients_are_never_locked_out(digits_config,
                                                                                                   tmp_path):
    # Unattacked, this config reaches 0.54 with auto clipping (0.68 with the plain mean) after 20 rounds.
    plain, _, _ = attacked_run(two_per_round(digits_config), tmp_path / "mean")
    robust, sent, rejected = attacked_run(two_per_round(digits_config, "aggregator.clip_norm=auto"), tmp_path / "clip")
    first_attack = min(step for step, client in sent if client in ATTACKERS)
    assert first_attack == 1  # this seed's first cohort holds an attacker: nothing is known of the clients yet
    assert plain.summary["final_accuracy"] < 0.2  # the plain mean lets it through and never recovers
    assert robust.summary["final_accuracy"] > 0.35
    honest_after = [(step, client) for step, client in sent if client not in ATTACKERS and step > first_attack]
    assert honest_after and not rejected & set(honest_after)  # no honest update is locked out afterwards
    assert {client for _, client in rejected} <= ATTACKERS
    later_attacks = {(step, client) for step, client in sent if client in ATTACKERS and step > first_attack}
    assert later_attacks and later_attacks <= rejected  # once there is a history, the poisoned update is rejected


def test_sign_flip_from_three_of_ten_clients_is_contained(digits_config):
    # The issue's first attack: -5x updates from 3 of 10 clients pass validation and wreck the mean.
    digits_config["data"].update(num_clients=10, partition="iid")
    digits_config["train"].update(rounds=10, clients_per_round=10)
    attack = [ModelPoisoning({2, 5, 7}, "sign_flip", scale=5.0)]
    plain = run_simulation(load_config(digits_config), client_hooks=attack)
    clean = run_simulation(load_config(digits_config)).summary["final_accuracy"]
    assert plain.summary["updates_rejected"] < 10  # validation alone lets nearly all 30 through
    assert plain.summary["final_accuracy"] < 0.3
    for aggregator in ("median", "trimmed_mean", "krum", "multi_krum"):
        overrides = [f"aggregator.name={aggregator}", "aggregator.trim_fraction=0.3"]
        robust = run_simulation(load_config(digits_config, overrides), client_hooks=attack)
        assert robust.summary["final_accuracy"] > clean - 0.12, aggregator


def test_resume_equals_uninterrupted_with_robust_state(digits_config, tmp_path):
    digits_config["train"]["rounds"] = 6
    config = load_config(digits_config, ["aggregator.name=multi_krum", "aggregator.clip_norm=auto",
                                         "validation.reference_rounds=3"])
    attack = [ModelPoisoning({1}, "boost", scale=5.0)]
    full = run_simulation(config, out_dir=tmp_path / "full", client_hooks=attack)
    with pytest.raises(KeyboardInterrupt):
        run_simulation(config, out_dir=tmp_path / "cut", client_hooks=attack, callbacks=[StopAfter(5)])
    resumed = resume_simulation(tmp_path / "cut", client_hooks=attack)
    assert without_wall_time(resumed.history) == without_wall_time(full.history)
    for ours, theirs in zip(resumed.model.parameters(), full.model.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_a_bound_no_update_reaches_leaves_the_mean_bit_identical(digits_config):
    plain = run_simulation(load_config(digits_config))
    wrapped = run_simulation(load_config(digits_config, ["aggregator.clip_norm=1.0e+30"]))
    assert without_wall_time(wrapped.history) == without_wall_time(plain.history)


def test_choose_attackers_is_reproducible_and_sized():
    assert choose_attackers(50, 0.3, seed=4) == choose_attackers(50, 0.3, seed=4)
    assert len(choose_attackers(50, 0.3, seed=4)) == 15 and len(choose_attackers(50, 0.1, seed=4)) == 5
    assert max(choose_attackers(50, 0.3, seed=4)) < 50


@pytest.mark.parametrize(("attack", "expected"), [("sign_flip", -5.0), ("boost", 5.0)])
def test_scaled_attacks_rewrite_only_the_attackers(attack, expected):
    hook = ModelPoisoning({3}, attack, scale=5.0)
    task = TrainTask(3, torch.zeros(2), 0, None, seed=7)  # type: ignore[arg-type]
    honest = ClientUpdate(3, torch.tensor([1.0, -2.0]), 10, 1, 0)
    torch.testing.assert_close(hook(task, honest).delta, expected * honest.delta)
    other = ClientUpdate(4, honest.delta, 10, 1, 0)
    assert hook(task, other) is other


def test_random_attack_has_the_scaled_norm_and_depends_on_the_task_seed():
    hook = ModelPoisoning({0}, "random", scale=5.0)
    honest = ClientUpdate(0, torch.tensor([3.0, 4.0, 0.0]), 10, 1, 0)
    first = hook(TrainTask(0, torch.zeros(3), 0, None, seed=1), honest).delta  # type: ignore[arg-type]
    again = hook(TrainTask(0, torch.zeros(3), 0, None, seed=1), honest).delta  # type: ignore[arg-type]
    other = hook(TrainTask(0, torch.zeros(3), 0, None, seed=2), honest).delta  # type: ignore[arg-type]
    assert float(first.norm()) == pytest.approx(25.0) and torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize("strategy", ["fedasync", "fedbuff", "fedasmu"])
def test_auto_clipping_runs_and_resumes_with_every_asynchronous_strategy(strategy, tmp_path):
    config = load_config(async_config(strategy, rounds=8), ["aggregator.clip_norm=auto", "checkpoint_every=3"])
    attack = [ModelPoisoning({1}, "boost", scale=50.0)]
    plain = run_simulation(load_config(async_config(strategy, rounds=8)), client_hooks=attack)
    clipped = run_simulation(config, out_dir=tmp_path / "full", client_hooks=attack)
    assert without_wall_time(clipped.history) != without_wall_time(plain.history)
    with pytest.raises(KeyboardInterrupt):
        run_simulation(config, out_dir=tmp_path / "cut", client_hooks=attack, callbacks=[StopAfter(5)])
    resumed = resume_simulation(tmp_path / "cut", client_hooks=attack)
    assert without_wall_time(resumed.history) == without_wall_time(clipped.history)


@pytest.mark.parametrize("aggregator", ["median", "trimmed_mean", "krum", "multi_krum"])
def test_a_cohort_rule_for_an_asynchronous_strategy_is_one_clear_error(aggregator):
    config = load_config(async_config("fedbuff"), [f"aggregator.name={aggregator}"])
    with pytest.raises(ConfigError, match=rf"aggregator.name={aggregator} needs a cohort .*'fedbuff'.*clip_norm"):
        run_simulation(config)
