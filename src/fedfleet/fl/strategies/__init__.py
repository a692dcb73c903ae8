"""Aggregation strategies by name."""

from __future__ import annotations

from fedfleet.config import StrategyConfig
from fedfleet.fl.strategies.base import FederationInfo, Strategy, sample_weights, weighted_sum
from fedfleet.fl.strategies.fedavg import FedAvg, FedProx
from fedfleet.fl.strategies.fednova import FedNova
from fedfleet.registry import Registry

STRATEGIES: Registry[Strategy] = Registry("strategy")
STRATEGIES.register("fedavg")(lambda cfg: FedAvg(server_lr=cfg.server_lr))
STRATEGIES.register("fedprox")(lambda cfg: FedProx(mu=cfg.mu, server_lr=cfg.server_lr))
STRATEGIES.register("fednova")(lambda cfg: FedNova(server_lr=cfg.server_lr))


def build_strategy(config: StrategyConfig) -> Strategy:
    """The strategy named by ``config.name``, built from its config section."""
    return STRATEGIES.build(config.name, config)


__all__ = [
    "STRATEGIES",
    "FedAvg",
    "FedNova",
    "FedProx",
    "FederationInfo",
    "Strategy",
    "build_strategy",
    "sample_weights",
    "weighted_sum",
]
