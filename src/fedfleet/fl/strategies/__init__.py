"""Aggregation strategies by name."""

from __future__ import annotations

from fedfleet.config import StrategyConfig
from fedfleet.fl.strategies.async_base import Arrival, AsyncStrategy
from fedfleet.fl.strategies.base import Combiner, FederationInfo, Strategy, sample_weights, weighted_sum
from fedfleet.fl.strategies.fedasmu import FedASMU
from fedfleet.fl.strategies.fedasync import FedAsync
from fedfleet.fl.strategies.fedavg import FedAvg, FedProx
from fedfleet.fl.strategies.fedbuff import FedBuff
from fedfleet.fl.strategies.fednova import FedNova
from fedfleet.fl.strategies.noniid import NonIIDWeighted
from fedfleet.fl.strategies.robust import RobustAggregation, with_aggregator
from fedfleet.registry import Registry

STRATEGIES: Registry[Strategy] = Registry("strategy")
STRATEGIES.register("fedavg")(lambda cfg: FedAvg(server_lr=cfg.server_lr))
STRATEGIES.register("fedprox")(lambda cfg: FedProx(mu=cfg.mu, server_lr=cfg.server_lr))
STRATEGIES.register("fednova")(lambda cfg: FedNova(server_lr=cfg.server_lr))
STRATEGIES.register("noniid")(lambda cfg: NonIIDWeighted(
    adaptive=cfg.adaptive, epsilon=cfg.epsilon, lr_lambda=cfg.lr_lambda, lr_b=cfg.lr_b, decay=cfg.decay,
    reference=cfg.reference, server_lr=cfg.server_lr))
STRATEGIES.register("fedasync")(
    lambda cfg: FedAsync(alpha=cfg.alpha, staleness=cfg.staleness, a=cfg.staleness_a, b=cfg.staleness_b))
STRATEGIES.register("fedbuff")(lambda cfg: FedBuff(buffer_size=cfg.buffer_size, server_lr=cfg.server_lr))
STRATEGIES.register("fedasmu")(lambda cfg: FedASMU(mix_scale=cfg.mix_scale, meta_lr=cfg.meta_lr,
                                                   refresh_at=cfg.refresh_at, refresh_beta=cfg.refresh_beta))


def build_strategy(config: StrategyConfig) -> Strategy:
    """The strategy named by ``config.name``, built from its config section."""
    return STRATEGIES.build(config.name, config)


__all__ = [
    "STRATEGIES",
    "Arrival",
    "AsyncStrategy",
    "Combiner",
    "FedASMU",
    "FedAsync",
    "FedAvg",
    "FedBuff",
    "FedNova",
    "FedProx",
    "FederationInfo",
    "NonIIDWeighted",
    "RobustAggregation",
    "Strategy",
    "build_strategy",
    "sample_weights",
    "weighted_sum",
    "with_aggregator",
]
