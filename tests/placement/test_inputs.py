from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import fedfleet.placement.profile as profile_module
from fedfleet.errors import ConfigError
from fedfleet.models import build_model
from fedfleet.placement import (
    LayerProfile,
    ModelProfile,
    PlacementProblem,
    load_catalog,
    load_profile_table,
    profile_torch_model,
    save_profile_table,
)
from fedfleet.placement.catalog import JobSpec, build_catalog

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "placement"


def test_linear_layer_profile_matches_its_shapes():
    model = nn.Sequential(nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
    profile = profile_torch_model(model, (12,), name="tiny", batch_size=4, repeats=1)
    linear, relu, second = profile.layers
    # forward 2·in·out, backward 2·in·out for the weight; the first layer's input needs no
    # gradient, every later one's does (another 2·in·out)
    assert linear.flops == 4 * 12 * 5
    assert second.flops == 6 * 5 * 3
    assert linear.param_bytes == (12 * 5 + 5) * 4
    assert linear.activation_bytes == 5 * 4
    assert (linear.kind, relu.kind) == ("dense", "elementwise")
    assert relu.param_bytes == 0 and relu.ref_time_s is not None and relu.ref_time_s > 0


def test_no_input_gradient_before_the_first_layer_with_parameters():
    # mlp-like: Flatten has nothing to train, so the Linear after it computes no input gradient
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
    flatten, linear, _, second = profile_torch_model(model, (3, 4), batch_size=4, repeats=1).layers
    assert flatten.flops == 0 and flatten.ref_time_s is not None
    assert linear.flops == 4 * 12 * 5 and second.flops == 6 * 5 * 3


def test_layer_time_is_the_median_cpu_time_of_the_timed_passes(monkeypatch):
    # passes take 3, 1, 2, 100, 2 s of CPU time (the warm-up passes are not read): median 2 s,
    # where the fastest pass would say 1 s and the mean 21.6 s
    ticks = iter([0, 3, 10, 11, 20, 22, 30, 130, 200, 202])
    monkeypatch.setattr(profile_module.time, "process_time", lambda: next(ticks))
    assert profile_module._median_train_seconds(nn.ReLU(), torch.ones(2, 3), repeats=5) == 2


def test_builtin_models_profile_every_layer():
    model = build_model("lenet5", (1, 28, 28), 10)
    profile = profile_torch_model(model, (1, 28, 28), name="lenet5", repeats=1)
    assert len(profile.layers) == len(model)
    assert sum(layer.param_bytes for layer in profile.layers) == 4 * sum(p.numel() for p in model.parameters())
    assert profile.has_measured_times


def test_non_sequential_models_are_refused():
    with pytest.raises(ConfigError, match=r"nn\.Sequential"):
        profile_torch_model(nn.Linear(3, 3), (3,))


def test_shipped_profile_tables_and_catalogs_load():
    ctr = load_profile_table(CONFIGS / "ctr_dnn.yaml")
    transformer = load_profile_table(CONFIGS / "transformer_small.csv")
    assert ctr.name == "ctr-dnn" and ctr.layers[0].gradient_bytes < ctr.layers[0].param_bytes
    assert len(transformer.layers) == 26 and transformer.layers[1].kind == "attention"
    for name in ("cloud.yaml", "lab.yaml"):
        assert load_catalog(CONFIGS / name).devices


def test_bad_profile_row_names_the_row(tmp_path):
    table = tmp_path / "bad.csv"
    table.write_text("name,kind,flops,activation_bytes\nx,dense,10,4\ny,dense,-1,4\n")
    with pytest.raises(ConfigError, match="layer 2: config key 'flops'"):
        load_profile_table(table)


def test_a_row_that_neither_computes_nor_outputs_is_refused(tmp_path):
    table = tmp_path / "zero.csv"
    table.write_text("name,kind,flops,activation_bytes\nx,dense,10,4\nnothing,dense,0,0\n")
    with pytest.raises(ConfigError, match=r"layer 2 \('nothing'\): flops and activation_bytes are both 0"):
        load_profile_table(table)


def test_a_profile_that_could_run_for_free_is_refused(two_layer_problem):
    # flops 0 everywhere: every stage would take 0 s, so throughput inf and cost 0
    free = ModelProfile("free", (LayerProfile(name="relu", flops=0, activation_bytes=4),))
    with pytest.raises(ConfigError, match="every layer takes 0 s per sample"):
        two_layer_problem(free)


def test_a_zero_compute_layer_beside_real_ones_is_a_stage_that_never_binds(two_layer_problem, recwarn):
    a, b = two_layer_problem().profile.layers
    relu = LayerProfile(name="relu", kind="elementwise", flops=0, activation_bytes=10)
    problem = two_layer_problem(ModelProfile("a-relu-b", (a, relu, b)))
    plan = problem.plan([0, 1, 1])
    assert plan.throughput == pytest.approx(100) and np.isfinite(plan.cost)
    assert problem.stage_throughput[1, 2, 0] == np.inf  # relu alone: 0 s per batch
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_missing_profile_table_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_profile_table(tmp_path / "absent.csv")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"speed": 2.0}, "exactly one of 'flops' and 'speed'"),
        ({"count": 0}, "count"),
        ({"colour": "red"}, "unknown config key"),
    ],
)
def test_bad_device_types_are_refused(change, message):
    device = {"name": "cpu", "count": 1, "flops": 1e9, "memory_gb": 1, "price_per_hour": 1, **change}
    with pytest.raises(ConfigError, match=message):
        build_catalog({"devices": [device]})


def test_links_must_name_known_devices():
    device = {"name": "cpu", "count": 1, "flops": 1e9, "memory_gb": 1, "price_per_hour": 1}
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        build_catalog({"devices": [device], "links": [{"between": ["cpu", "gpu"], "gbps": 1}]})


def test_relative_speed_needs_measured_layer_times():
    catalog = build_catalog({"devices": [{"name": "cpu", "count": 1, "speed": 1.0, "memory_gb": 1,
                                          "price_per_hour": 1}]})
    with pytest.raises(ConfigError, match="no ref_time_s"):
        PlacementProblem(load_profile_table(CONFIGS / "ctr_dnn.yaml"), catalog)


@pytest.mark.parametrize("suffix", [".csv", ".yaml"])
def test_a_saved_profile_reads_back_exactly(tmp_path, suffix):
    model = build_model("lenet5", (1, 28, 28), 10)
    measured = profile_torch_model(model, (1, 28, 28), name="lenet5", repeats=1)
    ctr = load_profile_table(CONFIGS / "ctr_dnn.yaml")  # has sync_bytes, no ref_time_s
    for profile in (measured, ctr):
        path = save_profile_table(profile, tmp_path / f"{profile.name}{suffix}")
        again = load_profile_table(path)
        assert again.layers == profile.layers and again.name == profile.name


def test_a_profile_file_needs_a_known_suffix(tmp_path):
    with pytest.raises(ConfigError, match=r"give a file ending in \.csv, \.yaml, \.yml"):
        save_profile_table(load_profile_table(CONFIGS / "ctr_dnn.yaml"), tmp_path / "p.txt")


def test_models_are_profiled_at_the_default_jobs_batch_unless_told_otherwise():
    seen = []

    class Recorder(nn.Linear):
        def forward(self, inputs):
            seen.append(inputs.shape[0])
            return super().forward(inputs)

    profile_torch_model(nn.Sequential(Recorder(3, 2)), (3,), repeats=1)
    assert set(seen) == {JobSpec().batch_size} == {512}
    seen.clear()
    profile_torch_model(nn.Sequential(Recorder(3, 2)), (3,), batch_size=7, repeats=1)
    assert set(seen) == {7}
