"""Pruning while the federation trains: the server hook behind the ``pruning`` config section.

``adaptive`` follows FedDUAP's FedAP (Zhang et al., IJCAI 2022): per-layer rates start from
one model-level rate (:func:`~fedfleet.pruning.importance.magnitude_rates`); the server prunes
one conv layer at a time, lets the federation train the smaller model for
``recovery_rounds``, and judges it on its validation data. If accuracy fell by more than
``delta`` from what it was just before, the layer is restored (the model before its pruning,
architecture and parameters) and tried again at ``rate - step``; otherwise the layer keeps its
rate (with ``try_higher``, ``rate + step`` is tried once more). The restore discards the
recovery rounds' training, as a rollback must.

``uniform`` prunes every conv layer at ``target_rate`` at once after ``start_round``, with no
feedback: the baseline at a fixed rate. ``magnitude`` zeroes the ``target_rate`` smallest conv
and linear weights after every round from ``start_round`` on: unstructured pruning, which
shrinks the count of non-zero parameters but neither the tensors clients train nor their time.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import nn

from fedfleet.config import PruningConfig
from fedfleet.data.datasets import ArrayDataset
from fedfleet.fl.client import evaluate
from fedfleet.fl.params import get_flat, set_flat
from fedfleet.fl.server_hooks import ModelReplacement
from fedfleet.pruning.importance import filter_importance, magnitude_rates, quantile, ranked_keep
from fedfleet.pruning.structure import (
    PruningError,
    channel_counts,
    conv_sites,
    count_flops,
    filters_to_keep,
    prune_channels,
)
from fedfleet.seeding import EngineStream, stream

log = logging.getLogger(__name__)

HRANK_IMAGES = 128  # validation images HRank's feature-map ranks are averaged over


def rebuild(model: nn.Sequential, channels: dict[int, int], input_shape: tuple[int, ...]) -> nn.Sequential:
    """``model``'s architecture with ``channels`` output channels per conv position (weights: the first ones)."""
    return prune_channels(model, {index: range(count) for index, count in channels.items()}, input_shape)


class PruningHook:
    """The server hook that prunes the global model as ``config`` says (see the module docstring).

    Parameters
    ----------
    config : PruningConfig
    model : nn.Sequential
        The run's initial global model (FLOPs and parameters are measured against it).
    validation : ArrayDataset
        The server's held-out data the adaptive method judges accuracy on.
    seed : int
        The run's seed (HRank's image sample).
    rounds : int
        The run's rounds: no layer is pruned later than ``recovery_rounds`` before the end, so every
        pruning is trained and judged before the run ends.
    eval_batch_size : int
    """

    PHASES = ("waiting", "recovering", "done")

    def __init__(self, config: PruningConfig, model: nn.Sequential, validation: ArrayDataset, seed: int,
                 rounds: int, eval_batch_size: int = 1000) -> None:
        self.config = config
        self.rounds = rounds
        self.validation = validation
        self.eval_batch_size = eval_batch_size
        self.input_shape = validation.input_shape
        self.sites = [site.index for site in conv_sites(model, self.input_shape)]
        if not self.sites and config.method != "magnitude":
            raise PruningError(f"pruning.method={config.method} needs a model with prunable conv layers; "
                               "this one has none (use pruning.method=magnitude or a conv model)")
        self.base_training_flops = count_flops(model, self.input_shape, training=True)
        self.images = None
        if config.importance == "hrank":
            sample = stream(seed, EngineStream.PRUNING).permutation(len(validation))[:HRANK_IMAGES]
            self.images = validation.x[torch.as_tensor(sample)]
        self.original_channels = channel_counts(model, self.input_shape) if self.sites else {}
        self.template = copy.deepcopy(model)  # the unpruned architecture a snapshot is rebuilt from
        self.state: dict[str, Any] = {"phase": "waiting", "rates": dict.fromkeys(self.sites, 0.0), "decisions": [],
                                      "failed": {}}
        self._measure(model)
        self.base_params, self.base_flops = self.params, self.flops

    # -- the ServerHook protocol --------------------------------------------------------------

    def on_round_end(self, round_index: int, model: nn.Module) -> ModelReplacement | None:
        assert isinstance(model, nn.Sequential)
        state = self.state
        if state["phase"] == "done" or round_index < self.config.start_round:
            return None
        if self.config.method == "magnitude":
            return self._mask(model)
        if self.config.method == "uniform":
            state["phase"] = "done"
            rate = min(self.config.target_rate, self.config.max_rate)
            if all(self._removed(index, rate) == 0 for index in self.sites):
                for index in self.sites:
                    self._decide(round_index, index, rate, None, "skipped (rate removes no filter)")
                return None
            for index in self.sites:
                state["rates"][index] = rate
                self._decide(round_index, index, rate, None, "pruned (uniform)")
            return self._replacement(self._prune(model, dict.fromkeys(self.sites, rate)))
        if state["phase"] == "waiting":
            state["queue"] = [[index, rate] for index, rate in magnitude_rates(
                model, self.input_shape, self.config.target_rate, self.config.max_rate).items()]
            return self._next_layer(round_index, model)
        state["countdown"] -= 1
        if state["countdown"] > 0:
            return None
        return self._judge(round_index, model)

    def record(self) -> dict[str, Any]:
        return {**{f"prune_rate_layer{index}": rate for index, rate in self.state["rates"].items()},
                "model_params": self.params, "model_nonzero_params": self.nonzero_params,
                "model_flops": self.flops}

    def summary(self) -> dict[str, Any]:
        return {"pruning_decisions": list(self.state["decisions"]),
                "flops_reduction": 1.0 - self.flops / self.base_flops,
                "params_reduction": 1.0 - self.nonzero_params / self.base_params}

    def state_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.state)

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> nn.Module:
        """Load a checkpointed state, checked first, and return the architecture it had reached.

        Raises
        ------
        ValueError
            The state is not one this hook wrote for this model.
        """
        assert isinstance(model, nn.Sequential)
        self._check_state(state)
        self.state = copy.deepcopy(state)
        if "channels" in state:
            model = rebuild(model, state["channels"], self.input_shape)
        self._measure(model, state.get("mask"))
        return model

    def _check_state(self, state: dict[str, Any]) -> None:
        if state.get("phase") not in self.PHASES or set(state.get("rates", {})) != set(self.sites):
            raise ValueError(f"pruning state with phase {state.get('phase')!r} and layers "
                             f"{sorted(state.get('rates', {}))}, expected one of {self.PHASES} and {self.sites}")
        layers = [entry[0] for entry in state.get("queue", [])] + list(state.get("channels", {}))
        if any(index not in self.sites for index in layers):
            raise ValueError(f"pruning state names layers {sorted(set(layers))}; this model prunes {self.sites}")
        for index, count in state.get("channels", {}).items():
            if not 1 <= count <= self.original_channels[index]:
                raise ValueError(f"pruning state gives layer {index} {count} filters; it has "
                                 f"{self.original_channels[index]}")
        if state["phase"] == "recovering" and not {"countdown", "snapshot", "reference_accuracy"} <= set(state):
            raise ValueError("pruning state is recovering but has no countdown, snapshot or reference accuracy")

    # -- adaptive ----------------------------------------------------------------------------

    def _next_layer(self, round_index: int, model: nn.Sequential) -> ModelReplacement | None:
        """Prune the next queued layer at its rate, remembering the model to restore."""
        state = self.state
        while state["queue"]:
            index, rate = state["queue"][0]
            if round_index + self.config.recovery_rounds > self.rounds:
                for layer, layer_rate in state["queue"]:
                    self._decide(round_index, layer, layer_rate, None, "not pruned (too few rounds left to judge it)")
                state["queue"] = []
                break
            if self._removed(index, rate) == 0:
                self._decide(round_index, index, rate, None, "skipped (rate removes no filter)")
                state["queue"].pop(0)
                continue
            state["snapshot"] = {"channels": channel_counts(model, self.input_shape), "params": get_flat(model)}
            state["reference_accuracy"] = self._accuracy(model)
            state["countdown"] = self.config.recovery_rounds
            state["phase"] = "recovering"
            state["previous_rate"], state["rates"][index] = state["rates"][index], rate
            return self._replacement(self._prune(model, {index: rate}))
        state["phase"] = "done"
        return None

    def _judge(self, round_index: int, model: nn.Sequential) -> ModelReplacement | None:
        state = self.state
        index, rate = state["queue"][0]
        accuracy, reference = self._accuracy(model), state["reference_accuracy"]
        if reference - accuracy <= self.config.delta:
            self._decide(round_index, index, rate, accuracy, "kept")
            higher = self._next_rate(index, rate, +self.config.step)
            ceiling = min(state["failed"].get(index, 1.0), self.config.max_rate + 1e-9)  # never a rate that failed
            if self.config.try_higher and not state.get("tried_higher") and higher < ceiling:
                state["queue"][0] = [index, higher]
                state["tried_higher"] = True
            else:
                state["queue"].pop(0)
                state["tried_higher"] = False
            return self._next_layer(round_index, model)
        self._decide(round_index, index, rate, accuracy, f"restored (drop {reference - accuracy:.4f} > delta)")
        restored = self._restore()
        state["rates"][index] = state["previous_rate"]
        state["failed"][index] = min(rate, state["failed"].get(index, 1.0))
        lower = self._next_rate(index, rate, -self.config.step)
        if state.get("tried_higher") or lower <= 0:
            state["queue"].pop(0)
            state["tried_higher"] = False
        else:
            state["queue"][0] = [index, lower]
        return self._next_layer(round_index, restored) or self._replacement(restored)

    def _removed(self, index: int, rate: float) -> int:
        """Filters of layer ``index`` that pruning at ``rate`` removes (of its original count)."""
        return self.original_channels[index] - filters_to_keep(self.original_channels[index], rate)

    def _next_rate(self, index: int, rate: float, step: float) -> float:
        """``rate`` moved by ``step`` until it removes a different number of filters (or leaves (0, 1))."""
        moved = rate
        while True:
            moved = round(moved + step, 10)
            if not 0 < moved < 1 or self._removed(index, moved) != self._removed(index, rate):
                return moved

    def _restore(self) -> nn.Sequential:
        snapshot = self.state["snapshot"]
        restored = rebuild(self.template, snapshot["channels"], self.input_shape)
        set_flat(restored, snapshot["params"])
        return restored

    # -- shared -----------------------------------------------------------------------------

    def _prune(self, model: nn.Sequential, rates: dict[int, float]) -> nn.Sequential:
        """``model`` with each listed layer holding ``1 - rate`` of its original filters, the most important ones."""
        keep = {}
        for index, rate in rates.items():
            conv = model[index]
            assert isinstance(conv, nn.Conv2d)
            kept = filters_to_keep(self.original_channels[index], rate)
            if kept < conv.out_channels:
                importance = filter_importance(model, index, self.config.importance, self.images)
                keep[index] = ranked_keep(importance, kept)
        return prune_channels(model, keep, self.input_shape)

    def _mask(self, model: nn.Sequential) -> ModelReplacement:
        """Zero the smallest weights (the mask is fixed when first drawn, at ``start_round``)."""
        weights = [module.weight for module in model.modules() if isinstance(module, nn.Conv2d | nn.Linear)]
        if "mask" not in self.state:
            magnitudes = torch.cat([w.detach().abs().reshape(-1) for w in weights])
            threshold = quantile(magnitudes, self.config.target_rate)
            self.state["mask"] = (magnitudes >= threshold).to(torch.uint8)
            self._measure(model, self.state["mask"])  # the architecture and the mask stay as they are from now on
        mask, start = self.state["mask"].bool(), 0
        with torch.no_grad():
            for weight in weights:
                weight.mul_(mask[start:start + weight.numel()].reshape(weight.shape))
                start += weight.numel()
        return ModelReplacement(model, compute_scale=1.0)

    def _replacement(self, model: nn.Sequential) -> ModelReplacement:
        if self.sites:
            self.state["channels"] = channel_counts(model, self.input_shape)
        self._measure(model)
        return ModelReplacement(model, count_flops(model, self.input_shape, training=True) / self.base_training_flops)

    def _measure(self, model: nn.Module, mask: torch.Tensor | None = None) -> None:
        self.params = sum(p.numel() for p in model.parameters())
        self.flops = count_flops(model, self.input_shape)
        self.nonzero_params = self.params - (int((mask == 0).sum()) if mask is not None else 0)

    def _accuracy(self, model: nn.Module) -> float:
        return evaluate(model, self.validation, self.eval_batch_size)[0]

    def _decide(self, round_index: int, index: int, rate: float, accuracy: float | None, decision: str) -> None:
        log.info("round %d: layer %d at rate %.2f: %s", round_index, index, rate, decision)
        self.state["decisions"].append({"round": round_index, "layer": index, "rate": rate,
                                        "validation_accuracy": accuracy, "decision": decision})
