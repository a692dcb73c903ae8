import pytest

from fedfleet.placement import PLANNERS, LayerProfile, ModelProfile, PlacementInfeasible, PlacementProblem
from fedfleet.placement.catalog import build_catalog

from .conftest import two_type_catalog


def test_memory_shortfall_names_the_layer_and_the_gap(two_layer_problem):
    huge = LayerProfile(name="embedding", kind="embedding", flops=1e3, param_bytes=3 * 2**30,
                        activation_bytes=10)
    a, b = two_layer_problem().profile.layers
    problem = two_layer_problem(ModelProfile("m", (huge, a, b)))
    # 3 GiB of parameters x state factor 1 + 10 samples x 10 bytes, on 1 GiB devices
    with pytest.raises(PlacementInfeasible, match=r"^memory: layer 'embedding' needs 3\.0 GiB .* short by 2\.0 GiB$"):
        PLANNERS.build("genetic", random_state=0).fit(problem)


def test_throughput_shortfall_names_the_layer_and_the_percentage(two_layer_problem):
    # layer b reaches at most 10 / (5 x 0.01 + 0.001) = 196.1 samples/s (2 gpus); target 1000
    problem = two_layer_problem(throughput_target=1000)
    with pytest.raises(PlacementInfeasible, match=r"^throughput: layer 'b' reaches at most 196\.1 samples/s "
                                                  r"\(on gpu\), below the target 1000 samples/s by 80\.4%$"):
        PLANNERS.build("dp").fit(problem)


def test_a_shared_count_shortfall_names_the_type_and_the_gap(two_layer_problem):
    # target 150: each b needs 2 of the 3 gpus (the cpu is too slow for it), so b-a-b needs
    # 4 gpus as two stages, and as one gpu stage it reaches only 10 / 0.074 = 135 samples/s.
    a, b = two_layer_problem().profile.layers
    problem = two_layer_problem(ModelProfile("bab", (b, a, b)), gpu_count=3, throughput_target=150)
    for name in ("brute", "dp", "genetic"):
        with pytest.raises(PlacementInfeasible, match=r"^instance counts: every plan meeting 150 samples/s needs at "
                                                      r"least 4 x gpu, but 3 are available: short by 1; add gpu"):
            PLANNERS.build(name).fit(problem)


def test_counts_that_only_fail_together_are_named_with_the_overshoot():
    # h alone needs 2 instances of either type for 15 samples/s (10/2 x 0.1 s per batch);
    # two h on one type need 4 (> 3 available). So h-h-h alternates types, and either
    # order puts two stages, 4 instances, on one type: each count alone can be met.
    h = LayerProfile(name="h", flops=1e8, param_bytes=1e3, activation_bytes=10)
    device = {"count": 3, "flops": 1e9, "memory_gb": 1, "price_per_hour": 1.0}
    catalog = build_catalog({"job": {"batch_size": 10, "throughput_target": 15},
                             "devices": [{"name": "x", **device}, {"name": "y", **device}]})
    problem = PlacementProblem(ModelProfile("hhh", (h, h, h)), catalog)
    with pytest.raises(PlacementInfeasible, match=r"^instance counts: each type's count alone can be met, but no "
                                                  r"plan meets 15 samples/s within all of them; .* needs 4 x [xy] "
                                                  r"\(3 available\)"):
        PLANNERS.build("dp").fit(problem)


def test_a_slow_link_names_the_boundary_and_both_shortfalls(two_layer_problem):
    # target 95 with 1 gpu: a (cpu or gpu) -> b (gpu only) over a 1 Mbit/s link carries
    # 1.25e5 / (2 x 1e4) = 6.25 samples/s; a and b together on the gpu reach 10 / 0.11 = 90.9.
    # a|b as two gpu stages: over the gpu's own 0.9 Mbit/s interconnect, 5.6 samples/s
    raw = two_type_catalog(1, throughput_target=95)
    raw["links"][0]["gbps"] = 0.001
    raw["devices"][1]["intra_gbps"] = 0.0009
    problem = PlacementProblem(two_layer_problem().profile, build_catalog(raw))
    with pytest.raises(PlacementInfeasible, match=(
            r"^throughput: no plan gets past layer 'b' at 95 samples/s: the fastest usable link after layer 'a' "
            r"\(cpu→gpu\) carries 6\.25 samples/s, short by 93\.4%; and the fastest stage running layers 'a' … 'b' "
            r"together \(gpu\) reaches 90\.91 samples/s, short by 4\.3%; raise that link's bandwidth")):
        PLANNERS.build("dp").fit(problem)


def test_single_type_baseline_explains_its_own_failure(two_layer_problem):
    # the whole model on the cpu: 10/k x 0.11 s per batch, at most 4 instances -> too slow
    with pytest.raises(PlacementInfeasible, match=r"^throughput: the whole model on cpu reaches at most"):
        PLANNERS.build("cpu-only").fit(two_layer_problem(throughput_target=150))
