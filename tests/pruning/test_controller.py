"""The pruning hook's decisions: FedAP's accuracy feedback with scripted validation accuracies."""

from __future__ import annotations

import pytest
import torch

from fedfleet.config import PruningConfig
from fedfleet.data.datasets import ArrayDataset
from fedfleet.models import build_model
from fedfleet.pruning import PruningHook, channel_counts, magnitude_rates
from fedfleet.pruning.importance import quantile

SHAPE = (1, 8, 8)


def validation() -> ArrayDataset:
    generator = torch.Generator().manual_seed(0)
    return ArrayDataset(torch.rand(40, *SHAPE, generator=generator), torch.arange(40) % 10, list(range(10)))


def hook_with_accuracies(accuracies: list[float], first_scale: float = 1.0,
                         **config) -> tuple[PruningHook, torch.nn.Sequential]:
    """A hook on a fresh cnn whose validation accuracies are ``accuracies`` in turn.

    ``first_scale`` scales the first conv's weights (small weights: a high initial rate there).
    """
    torch.manual_seed(0)
    model = build_model("cnn", SHAPE, 10)
    with torch.no_grad():
        model[0].weight.mul_(first_scale)
    hook = PruningHook(PruningConfig(enabled=True, **{"start_round": 1, "recovery_rounds": 1, **config}), model,
                       validation(), seed=0, rounds=20)
    scripted = iter(accuracies)
    hook._accuracy = lambda _model: next(scripted)  # type: ignore[method-assign]
    return hook, model


def test_a_drop_above_delta_restores_the_layer_and_a_small_one_keeps_it():
    hook, model = hook_with_accuracies([0.90, 0.80, 0.85, 0.845], target_rate=0.6, step=0.9, delta=0.01)
    original = {index: model[index].weight.detach().clone() for index in hook.sites}
    first, second = hook.sites
    rates = magnitude_rates(model, SHAPE, 0.6, 0.8)
    assert rates[first] > 0 and rates[second] > 0

    pruned = hook.on_round_end(1, model)  # layer `first` pruned; reference accuracy 0.90
    assert pruned is not None and pruned.model[first].out_channels < 16
    assert pruned.compute_scale < 1
    assert hook.record()[f"prune_rate_layer{first}"] == rates[first]

    after = hook.on_round_end(2, pruned.model)  # 0.80: a drop of 0.10 > delta -> restore, move on
    assert after is not None
    restored = after.model
    assert restored[first].out_channels == 16
    assert torch.equal(restored[first].weight, original[first])  # the snapshot, not the pruned model's weights
    assert restored[second].out_channels < 32  # the next layer, pruned from the restored model
    assert hook.record()[f"prune_rate_layer{first}"] == 0.0

    assert hook.on_round_end(3, restored) is None  # 0.845 against 0.85: within delta, kept; nothing left
    decisions = [(d["layer"], d["decision"].split(" ")[0]) for d in hook.summary()["pruning_decisions"]]
    assert decisions == [(first, "restored"), (second, "kept")]
    assert hook.state["phase"] == "done"
    assert hook.on_round_end(4, restored) is None
    assert channel_counts(restored, SHAPE)[second] == 32 - int(rates[second] * 32)


def test_a_restored_layer_is_tried_again_at_a_lower_rate():
    hook, model = hook_with_accuracies([0.9, 0.5, 0.9, 0.9], first_scale=0.01, max_rate=0.75, step=0.25)
    first = hook.sites[0]
    pruned = hook.on_round_end(1, model)
    assert pruned is not None
    rate = hook.state["queue"][0][1]
    assert rate == 0.75 and pruned.model[first].out_channels == 16 - 12
    again = hook.on_round_end(2, pruned.model)  # restored, then pruned at rate - step
    assert again is not None
    assert hook.state["queue"][0] == [first, pytest.approx(rate - 0.25)]
    assert again.model[first].out_channels == 16 - int((rate - 0.25) * 16)


def test_try_higher_prunes_a_kept_layer_once_more():
    hook, model = hook_with_accuracies([0.9] * 10, target_rate=0.3, step=0.2, try_higher=True)
    first = hook.sites[0]
    rate = magnitude_rates(model, SHAPE, 0.3, 0.8)[first]
    once = hook.on_round_end(1, model)
    twice = hook.on_round_end(2, once.model)
    assert twice is not None and twice.model[first].out_channels == 16 - int((rate + 0.2) * 16)
    third = hook.on_round_end(3, twice.model)  # kept at the higher rate: the next layer goes
    assert third is not None and third.model[first].out_channels == twice.model[first].out_channels
    assert hook.state["queue"][0][0] == hook.sites[1]


def test_nothing_happens_before_start_round():
    hook, model = hook_with_accuracies([0.9], start_round=3)
    assert hook.on_round_end(1, model) is None and hook.on_round_end(2, model) is None
    assert hook.on_round_end(3, model) is not None


def test_no_layer_is_pruned_too_late_to_be_trained_and_judged():
    hook, model = hook_with_accuracies([0.9, 0.9], recovery_rounds=2)
    hook.rounds = 3
    pruned = hook.on_round_end(1, model)  # judged at round 3, the last
    assert pruned is not None and hook.on_round_end(2, pruned.model) is None
    assert hook.on_round_end(3, pruned.model) is None  # kept; the next layer would never be judged
    decisions = [d["decision"] for d in hook.summary()["pruning_decisions"]]
    assert decisions == ["kept", "not pruned (too few rounds left to judge it)"]
    assert pruned.model[hook.sites[1]].out_channels == 32


def test_a_small_step_moves_to_a_rate_that_removes_fewer_filters():
    hook, model = hook_with_accuracies([0.9, 0.5, 0.9], first_scale=0.01, max_rate=0.78, step=0.01)
    pruned = hook.on_round_end(1, model)
    assert pruned.model[hook.sites[0]].out_channels == 4  # 0.78 of 16 filters: 12 go
    again = hook.on_round_end(2, pruned.model)  # restored; 0.77, 0.76 and 0.75 would remove the same 12
    assert hook.state["queue"][0][1] == pytest.approx(0.74)
    assert again.model[hook.sites[0]].out_channels == 5


def test_try_higher_never_retries_a_rate_that_was_restored():
    hook, model = hook_with_accuracies([0.9, 0.5, 0.9, 0.9, 0.9], first_scale=0.01, max_rate=0.75, step=0.25,
                                       try_higher=True)
    first = hook.sites[0]
    pruned = hook.on_round_end(1, model)  # 0.75
    lowered = hook.on_round_end(2, pruned.model)  # restored, 0.5
    kept = hook.on_round_end(3, lowered.model)  # 0.5 kept; 0.75 failed, so the next layer goes
    assert kept is not None and kept.model[first].out_channels == 8
    assert hook.state["queue"][0][0] == hook.sites[1]


def test_hrank_prunes_a_dead_filter_that_l1_would_keep():
    torch.manual_seed(0)
    model = build_model("cnn", SHAPE, 10)
    with torch.no_grad():
        model[0].bias.fill_(3.0)
        model[0].weight[2].fill_(5.0)  # the largest L1 norm ...
        model[0].bias[2] = -1e6  # ... and a map that is always zero after ReLU
    config = PruningConfig(enabled=True, method="uniform", start_round=1, target_rate=0.1)
    kept = {}
    for importance in ("l1", "hrank"):
        hook = PruningHook(config.model_copy(update={"importance": importance}), model, validation(), seed=0,
                           rounds=5)
        pruned = hook.on_round_end(1, model)
        kept[importance] = any(torch.equal(w, model[0].weight[2]) for w in pruned.model[0].weight)
    assert kept == {"l1": True, "hrank": False}


def test_the_quantile_equals_torchs_and_takes_any_size():
    values = torch.rand(1001, generator=torch.Generator().manual_seed(0))
    for q in (0.0, 0.13, 0.5, 0.999, 1.0):
        assert quantile(values, q) == pytest.approx(float(torch.quantile(values, q)), abs=1e-7)


def test_uniform_prunes_every_layer_at_once_and_magnitude_zeroes_weights_without_shrinking():
    torch.manual_seed(0)
    model = build_model("cnn", SHAPE, 10)
    uniform = PruningHook(PruningConfig(enabled=True, method="uniform", start_round=1, target_rate=0.5), model,
                          validation(), seed=0, rounds=20)
    pruned = uniform.on_round_end(1, model)
    assert pruned is not None and channel_counts(pruned.model, SHAPE) == {0: 8, 3: 16}
    assert uniform.on_round_end(2, pruned.model) is None

    magnitude = PruningHook(PruningConfig(enabled=True, method="magnitude", start_round=1, target_rate=0.5),
                            model, validation(), seed=0, rounds=20)
    masked = magnitude.on_round_end(1, model)
    assert masked is not None and masked.model is model and masked.compute_scale == 1.0
    record = magnitude.record()
    assert record["model_params"] == sum(p.numel() for p in model.parameters())
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear))
    assert record["model_params"] - record["model_nonzero_params"] == pytest.approx(weights / 2, abs=1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)  # a round of training moves every weight
    magnitude.on_round_end(2, model)
    zero = sum(int((m.weight == 0).sum()) for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear))
    assert zero == record["model_params"] - record["model_nonzero_params"]
