"""The multi-job runner: one device per job at a time, determinism, resume, failures, config errors."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fedfleet.errors import ConfigError
from fedfleet.fl.callbacks import BaseCallback
from fedfleet.fl.multijob import (
    DeviceCollision,
    DevicePool,
    load_multijob_config,
    resume_multijob,
    run_multijob,
)
from fedfleet.fl.params import get_flat

TINY = Path(__file__).resolve().parents[2] / "configs" / "multijob" / "tiny.yaml"


def tiny(*overrides):
    return load_multijob_config(TINY, ["scheduler.name=greedy", *overrides])


def without_wall_time(records):
    return [{k: v for k, v in r.items() if k not in ("wall_time_s", "planning_s")} for r in records]


class FixedDevices:
    """A broken policy: always the same devices, idle or not."""

    name = "fixed"

    def plan(self, problem, rng):
        return np.arange(problem.k)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        del state


def test_two_jobs_taking_one_device_is_refused():
    with pytest.raises(DeviceCollision, match=r"device 0 is held by job \d; job \d cannot take it"):
        run_multijob(tiny(), policy=FixedDevices())


def test_pool_refuses_double_claims_and_foreign_returns():
    pool = DevicePool([-1] * 4)
    pool.claim([0, 1], job=0)
    with pytest.raises(DeviceCollision):
        pool.claim([1, 2], job=1)
    assert pool.idle() == [2, 3]  # nothing of the refused claim was taken
    with pytest.raises(DeviceCollision):
        pool.release(0, job=1)
    pool.release(0, job=0)
    assert pool.idle() == [0, 2, 3]


def holding_intervals(schedule):
    """(device, start, end, job) of every device hold."""
    return [(d, r["dispatched_s"], end, r["job"]) for r in schedule
            for d, end in zip(r["devices"], r["returns_s"], strict=True)]


def test_no_device_ever_serves_two_jobs_at_once_and_jobs_overlap_in_time():
    result = run_multijob(tiny("scheduler.name=random", "jobs.0.train.rounds=4", "jobs.1.train.rounds=4"))
    schedule = result.runner.extra["schedule"]
    intervals = holding_intervals(schedule)
    for device in {d for d, *_ in intervals}:
        mine = sorted((s, e) for d, s, e, _ in intervals if d == device)
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(mine))
    jobs_by_time = [(r["dispatched_s"], r["end_s"], r["job"]) for r in schedule]
    assert any(a[2] != b[2] and a[0] < b[1] and b[0] < a[1] for a in jobs_by_time for b in jobs_by_time)
    assert result.summary["rounds"] == 8 and all(j["rounds"] == 4 for j in result.summary["jobs"].values())


def test_same_seed_same_events_schedule_and_metrics():
    first, second = (run_multijob(tiny("scheduler.name=random")) for _ in range(2))
    assert first.runner.events == second.runner.events
    assert without_wall_time(first.runner.extra["schedule"]) == without_wall_time(second.runner.extra["schedule"])
    for a, b in zip(first.runner.jobs, second.runner.jobs, strict=True):
        assert without_wall_time(a.state.records) == without_wall_time(b.state.records)
    other = run_multijob(tiny("scheduler.name=random", "seed=1"))
    assert other.runner.extra["schedule"][0]["devices"] != first.runner.extra["schedule"][0]["devices"] or \
        other.runner.events != first.runner.events


class StopAfter(BaseCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, step, record):
        if step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("policy", ["rlds", "bods"])
def test_resume_after_a_kill_equals_the_uninterrupted_run(policy, tmp_path):
    config = tiny(f"scheduler.name={policy}", "scheduler.rlds.imitation_steps=3", "scheduler.bods.iterations=2")
    full = run_multijob(config, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_multijob(config, tmp_path / "cut", callbacks=[StopAfter(3)])
    resumed = resume_multijob(tmp_path / "cut")
    for a, b in zip(full.runner.jobs, resumed.runner.jobs, strict=True):
        assert without_wall_time(a.state.records) == without_wall_time(b.state.records)
        assert torch.equal(get_flat(a.parts.model), get_flat(b.parts.model))
        metrics = [without_wall_time([json.loads(line)]) for line in
                   (tmp_path / "cut" / "jobs" / a.name / "metrics.jsonl").read_text().splitlines()]
        assert metrics == [without_wall_time([r]) for r in a.state.records]
    assert without_wall_time(resumed.runner.extra["schedule"]) == without_wall_time(full.runner.extra["schedule"])
    if policy == "rlds":
        assert (tmp_path / "cut" / "scheduler" / "rlds.safetensors").read_bytes() == \
            (tmp_path / "full" / "scheduler" / "rlds.safetensors").read_bytes()


def test_a_later_run_starts_from_saved_rlds_weights(tmp_path):
    first = run_multijob(tiny("scheduler.name=rlds", "scheduler.rlds.imitation_steps=3"), tmp_path / "a")
    weights = tmp_path / "a" / "scheduler" / "rlds.safetensors"
    second = run_multijob(tiny("scheduler.name=rlds", f"scheduler.rlds.weights={weights}"))
    assert second.runner.policy.imitated_ == [True, True]  # it skipped imitation: it started trained
    assert second.runner.policy.steps_[0] > first.runner.policy.steps_[0]


def test_a_round_whose_devices_all_fail_is_dropped_and_the_jobs_keep_going():
    result = run_multijob(tiny("fleet.failure_rate=0.9", "jobs.0.train.deadline_s=30", "jobs.1.train.deadline_s=30",
                               "jobs.0.train.rounds=4", "jobs.1.train.rounds=4"))
    assert all(job["rounds"] == 4 for job in result.summary["jobs"].values()) and result.summary["stop_reason"] is None
    for job in result.runner.jobs:
        accepted = [r["updates_accepted"] for r in job.state.records]
        assert accepted[0] == 0 and accepted[-1] > 0  # round 1 lost every device; later rounds trained
        first_round = next(r for r in result.runner.extra["schedule"] if r["job"] == job.name)
        assert first_round["end_s"] - first_round["dispatched_s"] == pytest.approx(30.0)  # waited out the deadline


def test_stop_at_target_frees_the_job_early():
    result = run_multijob(tiny("stop_at_target=true", "jobs.1.train.rounds=30", "jobs.1.train.target_accuracy=0.2"))
    job = result.summary["jobs"]["digits-iid"]
    assert job["rounds"] < 30 and job["stop_reason"].startswith("train.target_accuracy=0.2 reached")


def test_summary_and_run_directory_layout(tmp_path):
    result = run_multijob(tiny(), tmp_path / "run")
    run = tmp_path / "run"
    for name in ("digits-shards", "digits-iid"):
        assert {p.name for p in (run / "jobs" / name).iterdir()} >= {"config.yaml", "metrics.jsonl", "summary.json",
                                                                     "model.safetensors"}
    summary = json.loads((run / "summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))
    assert 0 < summary["jain_index"] <= 1 and 0 < summary["device_busy_share"] <= 1
    assert summary["rounds"] == sum(job["rounds"] for job in summary["jobs"].values())
    schedule = [json.loads(line) for line in (run / "schedule.jsonl").read_text().splitlines()]
    assert len(schedule) == summary["rounds"]
    assert all(r["cost"] == pytest.approx(r["time_term"] + r["fairness_term"]) for r in schedule)


@pytest.mark.parametrize(("override", "message"), [
    ("jobs.1.train.clients_per_round=13",
     r"jobs\.1 \(digits-iid\): train\.clients_per_round=13 is more devices than the fleet's num_devices=12"),
    ("jobs.0.train.bogus=1", r"unknown config key 'jobs\.0\.train\.bogus'"),
    ("scheduler.name=best", r"config key 'scheduler\.name'"),
    ("jobs.2.train.rounds=1", r"override jobs\.2: jobs is a list of 2 item\(s\)"),
    ("jobs.0.data.num_clients=5", r"jobs\.0 \(digits-shards\): data\.num_clients=5 differs from num_devices=12"),
    ("jobs.0.strategy.name=fedbuff", r"strategy 'fedbuff' is asynchronous"),
    ("fleet.failure_rate=0.5", r"jobs\.0 \(digits-shards\): a sync round with failing or vanishing devices"),
    ("jobs.1.name=digits-shards", r"jobs\.1\.name 'digits-shards' must be unique"),
    ("backend.name=ray", r"backend\.name=ray is not supported by multi-job runs"),
])
def test_bad_configs_are_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message) as caught:
        tiny(override)
    assert "\n" not in str(caught.value)


def test_the_shipped_benchmark_config_is_valid_and_matches_the_benchmark():
    config = load_multijob_config(TINY.parent / "benchmark.yaml")
    assert config.num_devices == 100 and [job.train.clients_per_round for job in config.jobs] == [10, 10, 10]
    assert {job.data.partition for job in config.jobs} == {"shards"}


def test_overrides_reach_into_the_jobs_list():
    config = tiny("jobs.0.train.rounds=5", "jobs.1.model.name=cnn")
    assert config.jobs[0].train.rounds == 5 and config.jobs[1].model.name == "cnn"
    assert config.jobs[1].train.rounds == 3 and config.scheduler.name == "greedy"
