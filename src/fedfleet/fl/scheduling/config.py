"""The ``scheduler`` section of a multi-job config: the policy and its knobs (docs/multijob.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from fedfleet.config import ConfigSection

POLICY_NAMES = ("random", "greedy", "fedcs", "genetic", "bods", "rlds")


class GeneticConfig(ConfigSection):
    population: int = Field(24, ge=2)  # device sets per generation
    generations: int = Field(30, ge=1)
    mutation: float = Field(0.3, ge=0, le=1)  # probability a child swaps one device for another candidate
    elite: int = Field(2, ge=0)  # best sets carried over unchanged


class BodsConfig(ConfigSection):
    initial: int = Field(10, ge=2)  # random device sets evaluated before the Gaussian process is fitted
    iterations: int = Field(20, ge=1)  # sets chosen by expected improvement, one cost evaluation each
    pool: int = Field(200, ge=1)  # sets scored by expected improvement per iteration (random + swaps of the best)
    xi: float = Field(0.01, ge=0)  # exploration margin of expected improvement, relative to the cost's spread


class RldsConfig(ConfigSection):
    hidden: int = Field(32, ge=1)  # width of the policy network's hidden layer
    lr: float = Field(0.05, gt=0)  # SGD step size of REINFORCE and imitation
    samples: int = Field(8, ge=1)  # plans sampled per planning call for the REINFORCE step
    baseline_decay: float = Field(0.9, ge=0, lt=1)  # moving-average baseline: b <- d*b + (1-d)*reward
    epsilon: float = Field(0.05, ge=0, le=1)  # probability a planning call returns a uniformly random set
    imitation_plans: int = Field(64, ge=1)  # random plans whose best the network imitates first (per job)
    imitation_steps: int = Field(30, ge=0)  # SGD steps of that imitation
    weights: str | None = None  # policy weights (scheduler/rlds.safetensors of an earlier run) to start from

    @field_validator("weights")
    @classmethod
    def _weights_are_a_file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"{value} is not a file; give the scheduler/rlds.safetensors of an earlier multijob run")
        return value


class SchedulerConfig(ConfigSection):
    name: Literal["random", "greedy", "fedcs", "genetic", "bods", "rlds"] = "bods"
    alpha: float = Field(1.0, ge=0)  # weight of the round time T (seconds) in the cost
    beta: float = Field(1000.0, ge=0)  # weight of the fairness variance F (frequencies, in [0, 0.25])
    fedcs_deadline_s: float | None = Field(None, gt=0)  # fedcs: round deadline; None = median expected time
    genetic: GeneticConfig = GeneticConfig()
    bods: BodsConfig = BodsConfig()
    rlds: RldsConfig = RldsConfig()
