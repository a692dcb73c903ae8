from pathlib import Path

import numpy as np
import pytest
from torch import nn

from fedfleet.errors import ConfigError
from fedfleet.models import build_model
from fedfleet.placement import (
    LayerProfile,
    ModelProfile,
    PlacementProblem,
    load_catalog,
    load_profile_table,
    profile_torch_model,
)
from fedfleet.placement.catalog import build_catalog

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "placement"


def test_linear_layer_profile_matches_its_shapes():
    model = nn.Sequential(nn.Linear(12, 5), nn.ReLU())
    profile = profile_torch_model(model, (12,), name="tiny", batch_size=4, repeats=1)
    linear, relu = profile.layers
    # forward 2·in·out, backward 2·in·out for the input and 2·in·out for the weight
    assert linear.flops == 6 * 12 * 5
    assert linear.param_bytes == (12 * 5 + 5) * 4
    assert linear.activation_bytes == 5 * 4
    assert (linear.kind, relu.kind) == ("dense", "elementwise")
    assert relu.param_bytes == 0 and relu.ref_time_s is not None and relu.ref_time_s > 0


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
