"""The asynchronous runner: determinism, sync parity, exact staleness, causality, faults, resume."""

import json

import pytest
import torch

from fedfleet.config import load_config
from fedfleet.errors import ConfigError
from fedfleet.fl import build_federated_data, resume_simulation, run_simulation
from fedfleet.fl.callbacks import BaseCallback
from fedfleet.fl.federated_data import FederatedData
from fedfleet.fl.fleet import DeviceProfile
from fedfleet.fl.params import get_flat
from fedfleet.fl.simulation import build_runner


def async_config(strategy="fedasync", **train):
    return {
        "name": "async-test",
        "seed": 0,
        "data": {"dataset": "digits", "num_clients": 8, "partition": "dirichlet", "alpha": 0.5},
        "model": {"name": "mlp"},
        "train": {"mode": "async", "rounds": 10, "clients_per_round": 4, "batch_size": 16, "lr": 0.1, **train},
        "strategy": {"name": strategy},
        "checkpoint_every": 3,
    }


def without_wall_time(records):
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in records]


def equal_sized(config, size):
    """The config's federation with every client cut to ``size`` samples."""
    data = build_federated_data(config.data.model_copy(update={"partition": "iid"}), config.seed)
    return FederatedData([c.subset(torch.arange(size)) for c in data.clients], data.test)


def test_same_seed_same_event_order_and_metrics():
    config = load_config(async_config("fedasmu"), ["fleet.failure_rate=0.2", "train.task_timeout_s=20"])
    runs = []
    for _ in range(2):
        runner = build_runner(config)
        runner.run()
        runs.append(runner)
    assert runs[0].events == runs[1].events and len(runs[0].events) > 20
    assert without_wall_time(runs[0].state.records) == without_wall_time(runs[1].state.records)
    other = build_runner(load_config(async_config("fedasmu"), ["seed=1", "fleet.failure_rate=0.2",
                                                               "train.task_timeout_s=20"]))
    other.run()
    assert other.events != runs[0].events


def test_fedbuff_with_k_equal_to_the_cohort_is_sync_fedavg():
    overrides = ["fleet.profile=uniform", "fleet.fluctuation=0", "train.rounds=5"]
    sync = load_config({**async_config(), "train": {"rounds": 5, "clients_per_round": 4, "batch_size": 16,
                                                    "lr": 0.1}, "strategy": {"name": "fedavg"}}, overrides)
    asyn = load_config(async_config("fedbuff"), [*overrides, "strategy.buffer_size=4", "strategy.server_lr=1"])
    data = equal_sized(sync, 150)
    a, b = run_simulation(sync, data=data), run_simulation(asyn, data=data)
    assert torch.equal(get_flat(a.model), get_flat(b.model))
    assert [r["test_accuracy"] for r in a.history] == [r["test_accuracy"] for r in b.history]
    assert [r["virtual_time_s"] for r in a.history] == [r["virtual_time_s"] for r in b.history]
    assert [r["version"] for r in b.history] == [r["round"] for r in a.history] == [1, 2, 3, 4, 5]
    assert all(r["staleness_max"] == 0 for r in b.history)


def scripted(config_dict, speeds, size=160, **overrides):
    """A runner on equal-sized clients whose device i computes ``size / speeds[i]`` seconds per task."""
    config = load_config(config_dict, [f"{k}={v}" for k, v in overrides.items()])
    data = equal_sized(config, size)
    runner = build_runner(config, data=data)
    runner.parts.fleet = [DeviceProfile(i, s, 1e9, 1e9, 1.0) for i, s in enumerate(speeds)]
    return runner


def test_scripted_schedule_gives_exact_staleness():
    # two devices always busy: device 0 takes 1 s a task, device 1 takes 2.3 s
    config = async_config(rounds=10, clients_per_round=2, eval_every=1)
    config["data"]["num_clients"] = 2
    runner = scripted(config, [160.0, 160 / 2.3], **{"fleet.fluctuation": 0, "strategy.staleness": "constant"})
    runner.run()
    assert [r["staleness_max"] for r in runner.state.records] == [0, 0, 2, 1, 0, 2, 1, 0, 2, 1]
    arrivals = [(round(t, 3), data["task"]) for t, kind, data in runner.events if kind == "arrive"]
    assert [t for t, _ in arrivals] == [1.0, 2.0, 2.3, 3.0, 4.0, 4.6, 5.0, 6.0, 6.9, 7.0]


class Spy:
    """Records what the strategy and the clients were given, with the virtual time of each call."""

    def __init__(self, runner):
        self.runner, self.created, self.used, self.fresh = runner, {}, [], []
        strategy, backend = runner.strategy, runner.parts.backend
        receive, refresh, run = strategy.receive, strategy.refresh, backend.run
        self.created[self.key(runner.state.params)] = 0.0

        def spy_receive(params, arrival):
            out = receive(params, arrival)
            if out is not None:
                self.created[self.key(out)] = runner.queue.now
            return out

        def spy_refresh(local, fresh, gained):
            self.fresh.append((self.key(fresh), runner.queue.now))
            return refresh(local, fresh, gained)

        def spy_run(tasks):
            self.used += [(self.key(t.params), runner.queue.now, t.steps) for t in tasks]
            return run(tasks)

        strategy.receive, strategy.refresh, backend.run = spy_receive, spy_refresh, spy_run

    @staticmethod
    def key(params):
        return params.numpy().tobytes()


@pytest.mark.parametrize("strategy", ["fedasync", "fedbuff", "fedasmu"])
def test_no_client_sees_a_future_version(strategy):
    config = load_config(async_config(strategy, rounds=12), ["strategy.refresh_at=0.5"] if strategy == "fedasmu"
                         else ["strategy.buffer_size=2"] if strategy == "fedbuff" else [])
    runner = build_runner(config)
    spy = Spy(runner)
    runner.run()
    whole_or_first = [(k, t) for k, t, steps in spy.used if steps is None or steps[0] == 0]
    assert whole_or_first and all(k in spy.created and spy.created[k] <= t for k, t in whole_or_first)
    assert all(spy.created[k] <= t for k, t in spy.fresh)  # a refresh gets a model that already exists
    if strategy == "fedasmu":
        assert spy.fresh and any(k != spy.key(get_flat(runner.parts.model)) for k, _ in spy.fresh)
        latest = sorted(spy.created.items(), key=lambda kv: kv[1])
        for key, moment in spy.fresh:  # ... and it is the newest one at that moment
            assert key == [k for k, t in latest if t <= moment][-1]


def test_a_device_that_never_returns_does_not_stall_the_run():
    config = load_config(async_config("fedasync"), ["fleet.failure_rate=0.5", "train.task_timeout_s=15"])
    result = run_simulation(config)
    assert result.summary["version"] == 10 and result.summary["timed_out"] > 0
    lost = load_config(async_config("fedasync"), ["fleet.failure_rate=0.9"])
    stopped = run_simulation(lost)
    assert stopped.summary["version"] < 10 and "never return" in stopped.summary["stop_reason"]


def test_every_device_gone_stops_with_a_reason(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("device_id,start_s,end_s\n" + "".join(f"{d},0,30\n" for d in range(8)))
    config = load_config(async_config("fedasync", rounds=1000), [f"fleet.trace={trace}"])
    result = run_simulation(config)
    assert 0 < result.summary["version"] < 1000
    assert result.summary["stop_reason"].startswith("every device is gone")
    assert result.summary["virtual_time_s"] <= 30


def test_virtual_time_budget():
    result = run_simulation(load_config(async_config("fedasync", rounds=1000, max_virtual_time_s=25)))
    assert result.summary["virtual_time_s"] == 25 and "max_virtual_time_s" in result.summary["stop_reason"]
    assert all(r["virtual_time_s"] <= 25 for r in result.history)


def test_stale_updates_are_rejected_with_the_reason(tmp_path):
    config = load_config(async_config("fedasync", rounds=15, max_staleness=1))
    result = run_simulation(config, out_dir=tmp_path)
    lines = [json.loads(x) for x in (tmp_path / "rejections.jsonl").read_text().splitlines()]
    assert lines and all("exceeds train.max_staleness=1" in r["reason"] for r in lines)
    assert result.summary["updates_rejected"] == len(lines)
    assert max(int(s) for s in result.summary["staleness_counts"]) > 1  # stale ones arrived and were refused


class StopAfter(BaseCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, step, record):
        if step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("strategy", ["fedbuff", "fedasmu"])
def test_resume_after_kills_equals_uninterrupted(strategy, tmp_path):
    overrides = ["fleet.failure_rate=0.2", "train.task_timeout_s=20", "fleet.dropout.mean_online_s=60",
                 "fleet.dropout.mean_offline_s=20", "strategy.buffer_size=2" if strategy == "fedbuff"
                 else "strategy.refresh_at=0.5", "checkpoint_every=2", "train.rounds=12"]
    config = load_config(async_config(strategy), overrides)
    full = run_simulation(config, out_dir=tmp_path / "full")
    for kill in (3, 7, 10):
        cut = tmp_path / f"cut{kill}"
        with pytest.raises(KeyboardInterrupt):
            run_simulation(config, out_dir=cut, callbacks=[StopAfter(kill)])
        resumed = resume_simulation(cut)
        assert without_wall_time(resumed.history) == without_wall_time(full.history)
        assert torch.equal(get_flat(resumed.model), get_flat(full.model))
        for name in ("metrics.jsonl", "rejections.jsonl"):
            if (tmp_path / "full" / name).exists():
                lines = [without_wall_time([json.loads(x)]) for x in (cut / name).read_text().splitlines()]
                expected = [without_wall_time([json.loads(x)]) for x in (tmp_path / "full" / name).read_text()
                            .splitlines()]
                assert lines == expected


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match=r"strategy.alpha is not a key of strategy 'fedbuff'"):
        load_config(async_config("fedbuff"), ["strategy.alpha=0.5"])
    with pytest.raises(ConfigError, match=r"is synchronous; with train.mode=async"):
        load_config(async_config("fedavg"))
    with pytest.raises(ConfigError, match=r"is asynchronous; set train.mode=async"):
        load_config(async_config("fedasync"), ["train.mode=sync"])


def test_segmented_local_training_equals_one_task():
    from fedfleet.fl.client import LocalTrainer
    from fedfleet.fl.messages import LocalTrainingPlan, TrainTask
    from fedfleet.models import build_model

    config = load_config(async_config())
    data = build_federated_data(config.data, config.seed)
    torch.manual_seed(0)
    trainer = LocalTrainer(build_model("mlp", data.input_shape, data.num_classes))
    start, plan, client = get_flat(trainer.model), LocalTrainingPlan(epochs=2, batch_size=16, lr=0.1), data.clients[0]
    whole = trainer.train(TrainTask(0, start, 0, plan, seed=7), client)
    first = trainer.train(TrainTask(0, start, 0, plan, seed=7, steps=(0, 5)), client)
    second = trainer.train(TrainTask(0, start + first.delta, 0, plan, seed=7, steps=(5, 10**9)), client)
    assert first.local_steps == 5 and first.local_steps + second.local_steps == whole.local_steps
    torch.testing.assert_close(start + first.delta + second.delta, start + whole.delta, rtol=0, atol=1e-6)


def test_report_compares_async_and_sync_runs(tmp_path):
    from fedfleet.report.runs import write_runs_report

    sync = {**async_config(), "train": {"rounds": 3, "clients_per_round": 4}, "strategy": {"name": "fedavg"}}
    run_simulation(load_config(sync), out_dir=tmp_path / "sync")
    run_simulation(load_config(async_config("fedbuff"), ["strategy.buffer_size=2"]), out_dir=tmp_path / "fedbuff")
    summary = json.loads((tmp_path / "fedbuff" / "summary.json").read_text())
    assert sum(summary["participation"]) == summary["updates_accepted"]
    assert sum(summary["staleness_counts"].values()) == summary["updates_accepted"] + summary["updates_rejected"]
    page = write_runs_report([tmp_path / "sync", tmp_path / "fedbuff"], tmp_path / "report.html").read_text()
    for figure in ("accuracy_time", "staleness", "participation"):
        assert f"report_{figure}.png" in page and (tmp_path / f"report_{figure}.png").exists()


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_async_checkpoint_is_data_and_a_crafted_one_runs_no_code(tmp_path):
    import pickle

    from fedfleet.errors import CheckpointError
    from fedfleet.fl.checkpoint import load_checkpoint

    run_simulation(load_config(async_config("fedasmu")), out_dir=tmp_path / "run")
    folder = tmp_path / "run" / "checkpoint"
    assert sorted(p.suffix for p in folder.iterdir()) == [".json", ".safetensors"]
    state = load_checkpoint(folder)
    assert state.extra["queue"]["events"] and all(isinstance(e["data"], dict) for e in state.extra["queue"]["events"])
    marker = tmp_path / "pwned"
    for path in folder.iterdir():
        path.unlink()
    (folder / "state.pt").write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(CheckpointError):
        resume_simulation(tmp_path / "run")
    assert not marker.exists()


def test_bad_updates_are_rejected_one_at_a_time(tmp_path):
    import dataclasses

    def attacker(task, update):
        if update.client_id == 3:
            return dataclasses.replace(update, delta=update.delta * 40)
        if update.client_id == 5:
            return dataclasses.replace(update, delta=torch.full_like(update.delta, float("nan")))
        return update

    config = load_config(async_config("fedasync", rounds=30))
    result = run_simulation(config, out_dir=tmp_path, client_hooks=[attacker])
    lines = [json.loads(x) for x in (tmp_path / "rejections.jsonl").read_text().splitlines()]
    reasons = {r["client_id"]: r["reason"] for r in lines}
    assert "NaN" in reasons[5] and "exceeds" in reasons[3] and set(reasons) == {3, 5}
    assert result.summary["participation"][5] == 0
    # until three update norms are known only the global-norm bound applies, then the medians catch it
    assert result.summary["participation"][3] <= 2 < sum(r["client_id"] == 3 for r in lines)
    assert torch.isfinite(get_flat(result.model)).all()


def test_an_async_run_directory_with_its_report_can_be_overwritten(tmp_path):
    from fedfleet import api

    config = load_config(async_config("fedbuff", rounds=2), ["strategy.buffer_size=2"])
    api.run(config, out_dir=tmp_path / "r")
    assert (tmp_path / "r" / "report_staleness.png").exists()
    api.run(config, out_dir=tmp_path / "r", overwrite=True)


@pytest.mark.parametrize("faults", [{}, {"failure_rate": 0.3}])
def test_in_flight_tasks_train_together_and_lost_ones_not_at_all(digits_config, faults):
    digits_config["train"].update(mode="async", rounds=10, task_timeout_s=60.0)
    digits_config["strategy"] = {"name": "fedasync"}
    digits_config["fleet"] = faults
    runner = build_runner(load_config(digits_config | {"backend": {"workers": 1}}))
    batches: list[int] = []
    train = runner.parts.backend.run
    runner.parts.backend.run = lambda tasks: batches.append(len(tasks)) or train(tasks)  # type: ignore[method-assign]
    summary = runner.run()
    assert max(batches) > 1  # a parallel backend gets several tasks at once
    arrived = runner.state.totals["updates_accepted"] + runner.state.totals["updates_rejected"]
    in_flight = sum("trained" in task for task in runner.tasks.values())
    assert sum(batches) == arrived + in_flight  # no lost or timed-out task was trained
    assert summary["failed"] > 0 if faults else summary["failed"] == 0
