import pytest

from fedfleet.placement import PLANNERS, LayerProfile, ModelProfile, PlacementInfeasible


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


def test_coupled_constraints_say_what_to_change(two_layer_problem):
    # target 150: each b needs 2 of the 3 gpus (the cpu is too slow for it), so b-a-b needs
    # 4 gpus as two stages, and as one gpu stage it reaches only 10 / 0.074 = 135 samples/s.
    a, b = two_layer_problem().profile.layers
    problem = two_layer_problem(ModelProfile("bab", (b, a, b)), gpu_count=3, throughput_target=150)
    with pytest.raises(PlacementInfeasible, match="instance counts"):
        PLANNERS.build("brute").fit(problem)


def test_single_type_baseline_explains_its_own_failure(two_layer_problem):
    # the whole model on the cpu: 10/k x 0.11 s per batch, at most 4 instances -> too slow
    with pytest.raises(PlacementInfeasible, match=r"^throughput: the whole model on cpu reaches at most"):
        PLANNERS.build("cpu-only").fit(two_layer_problem(throughput_target=150))
