"""Device faults for both modes: failing tasks, on/off periods, availability traces, timeouts."""

import itertools
import json

import pytest

from fedfleet.config import DropoutConfig, load_config
from fedfleet.errors import ConfigError
from fedfleet.fl import run_simulation
from fedfleet.fl.faults import DropoutAvailability, read_trace


def sync_config(**train):
    return {
        "name": "faults-test",
        "seed": 0,
        "data": {"dataset": "digits", "num_clients": 8, "partition": "dirichlet", "alpha": 0.5},
        "model": {"name": "mlp"},
        "train": {"rounds": 5, "clients_per_round": 4, "batch_size": 16, "lr": 0.1, **train},
        "checkpoint_every": 0,
    }


def test_trace_csv_and_json_agree(tmp_path):
    csv_file, json_file = tmp_path / "t.csv", tmp_path / "t.json"
    csv_file.write_text("device_id,start_s,end_s\n0,0,10\n0,5,20\n0,30,40\n2,100,200\n")
    json_file.write_text(json.dumps({"0": [[0, 10], [5, 20], [30, 40]], "2": [[100, 200]]}))
    a, b = read_trace(csv_file, 4), read_trace(json_file, 4)
    assert a.spans == b.spans == {0: [(0.0, 20.0), (30.0, 40.0)], 2: [(100.0, 200.0)]}
    assert a.online(0, 19.9) and not a.online(0, 20.0) and a.next_online(0, 25) == 30.0
    assert a.online_until(0, 3) == 20.0 and a.next_online(0, 41) is None
    assert not a.online(1, 0) and a.next_online(1, 0) is None  # a device the trace does not name


@pytest.mark.parametrize(("text", "message"), [
    ("device_id,start_s,end_s\n9,0,10\n", "names device 9"),
    ("device_id,start_s,end_s\n0,10,5\n", "need 0 <= start_s < end_s"),
    ("device,begin\n0,1\n", "needs the header device_id,start_s,end_s"),
    ("device_id,start_s,end_s\n0,x,5\n", "is malformed"),
])
def test_bad_traces_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "trace.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        read_trace(path, 4)
    assert "\n" not in str(error.value)


def test_dropout_periods_alternate_and_are_reproducible():
    config = DropoutConfig(mean_online_s=10, mean_offline_s=5)
    a, b = DropoutAvailability(config, 3), DropoutAvailability(config, 3)
    spans = a.intervals(1, 500)
    assert spans == b.intervals(1, 500)[: len(spans)]
    assert all(s < e <= s2 for (s, e), (s2, _) in itertools.pairwise(spans))
    online = sum(e - s for s, e in spans if e <= 500) / 500
    assert 0.4 < online < 0.9  # about 10 / 15 of the time
    assert DropoutAvailability(config, 4).intervals(1, 500) != spans


def test_sync_waits_out_the_timeout_for_a_lost_task():
    result = run_simulation(load_config(sync_config(task_timeout_s=50), ["fleet.failure_rate=0.5"]))
    times = [r["virtual_time_s"] for r in result.history]
    durations = [b - a for a, b in itertools.pairwise([0.0, *times])]
    assert result.summary["dropped"] > 0 and 50.0 in [round(d, 9) for d in durations]
    assert max(durations) <= 50.0


def test_sync_with_failing_devices_needs_a_limit():
    with pytest.raises(ConfigError, match="would wait forever"):
        load_config(sync_config(), ["fleet.failure_rate=0.1"])


def test_sync_stops_when_every_device_is_gone(tmp_path):
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({str(d): [[0, 60]] for d in range(8)}))
    result = run_simulation(load_config(sync_config(rounds=100, deadline_s=30), [f"fleet.trace={trace}"]))
    assert result.summary["rounds"] < 100 and result.summary["stop_reason"].startswith("every device is gone")


def test_sync_waits_for_devices_to_come_back(tmp_path):
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({str(d): [[0, 5], [500, 10_000]] for d in range(8)}))
    result = run_simulation(load_config(sync_config(rounds=4, deadline_s=4), [f"fleet.trace={trace}"]))
    empty, back = result.history[-2:]  # round 3 finds nobody and waits until t = 500; round 4 trains
    assert empty["virtual_time_s"] == 500 and back["virtual_time_s"] > 500
    assert back["updates_accepted"] > empty["updates_accepted"]


def test_async_dispatches_only_devices_the_trace_has_online(tmp_path):
    from fedfleet.fl.selection import RandomSelector
    from fedfleet.fl.simulation import build_runner

    trace = tmp_path / "trace.json"  # even devices leave at 40 s, odd ones arrive at 60 s
    trace.write_text(json.dumps({str(d): [[0, 40]] if d % 2 == 0 else [[60, 1e9]] for d in range(8)}))
    seen = []

    class Recorder(RandomSelector):
        def select(self, round_index, available, k, rng):
            seen.append((runner.queue.now, sorted(int(a) for a in available)))
            return super().select(round_index, available, k, rng)

    config = load_config({**sync_config(rounds=150), "strategy": {"name": "fedasync"}},
                         ["train.mode=async", "train.clients_per_round=2", "train.task_timeout_s=5",
                          f"fleet.trace={trace}"])
    runner = build_runner(config, selector=Recorder())
    summary = runner.run()
    assert any(t < 40 for t, _ in seen) and any(t >= 60 for t, _ in seen)
    for moment, available in seen:
        assert all((d % 2 == 0) == (moment < 40) and (moment < 40 or moment >= 60) for d in available)
    assert summary["version"] == 150 and summary["participation"][1] > 0 and summary["participation"][0] > 0


def test_sync_resume_with_faults_equals_uninterrupted(tmp_path):
    from fedfleet.fl import resume_simulation
    from fedfleet.fl.callbacks import BaseCallback

    class StopAt(BaseCallback):
        def on_step_end(self, step, record):
            if step == 5:
                raise KeyboardInterrupt

    overrides = ["fleet.failure_rate=0.3", "fleet.dropout.mean_online_s=20", "fleet.dropout.mean_offline_s=10",
                 "checkpoint_every=2"]
    config = load_config(sync_config(rounds=8, task_timeout_s=15), overrides)
    full = run_simulation(config, out_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_simulation(config, out_dir=tmp_path / "cut", callbacks=[StopAt()])
    resumed = resume_simulation(tmp_path / "cut")
    strip = [{k: v for k, v in r.items() if k != "wall_time_s"} for r in full.history]
    assert [{k: v for k, v in r.items() if k != "wall_time_s"} for r in resumed.history] == strip
    assert resumed.summary["participation"] == full.summary["participation"] and full.summary["dropped"] > 0
