"""RLDS: a policy network shared by every job, trained by REINFORCE on the negative round cost.

The network scores each candidate device from its features for the job being planned; a
plan of ``k`` devices is a Plackett-Luce sample of the scores (Gumbel top-k), whose
log-probability is the sum over picks of ``score - logsumexp(scores of those left)``.
Before a job's first REINFORCE step the network imitates the cheapest of
``imitation_plans`` random plans. Each planning call then samples ``samples`` plans, takes
one REINFORCE step with a per-job moving-average baseline of the reward ``-cost / scale``,
and returns the cheapest of those plans and the network's top-``k`` plan; with probability
``epsilon`` it returns a uniformly random plan instead (exploration). The weights, the
baselines and which jobs have imitated are saved as one safetensors file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from fedfleet.errors import ConfigError
from fedfleet.fl.scheduling.cost import PlanningProblem
from fedfleet.fl.scheduling.heuristics import random_set

NUM_FEATURES = 3
WEIGHTS_FILE = "rlds.safetensors"


def device_features(problem: PlanningProblem) -> torch.Tensor:
    """(c, 3) per candidate: expected time / slowest candidate's, share of rounds served, time rank / c."""
    times = problem.times[problem.candidates]
    served = problem.counts[problem.candidates] / max(problem.round_index - 1, 1)
    rank = np.argsort(np.argsort(times, kind="stable"), kind="stable") / len(times)
    return torch.tensor(np.stack([times / times.max(), served, rank], axis=1), dtype=torch.float32)


def plan_log_prob(scores: torch.Tensor, picks: torch.Tensor) -> torch.Tensor:
    """Plackett-Luce log-probability of picking positions ``picks`` (in order) from ``scores`` ((c,))."""
    log_prob = scores.new_zeros(())
    remaining = torch.ones_like(scores, dtype=torch.bool)
    for pick in picks:
        log_prob = log_prob + scores[pick] - torch.logsumexp(scores[remaining], dim=0)
        remaining = remaining.clone()
        remaining[pick] = False
    return log_prob


class RldsPolicy:
    """See the module docstring.

    Parameters
    ----------
    num_jobs : int
    hidden, samples, imitation_plans, imitation_steps : int
    lr, baseline_decay, epsilon : float
    random_state : int
        Seeds the network's initial weights.
    weights : path, optional
        A file written by :meth:`save` to start from (imitation is then skipped for the jobs it covers).
    """

    name = "rlds"

    def __init__(self, num_jobs: int, hidden: int = 32, lr: float = 0.05, samples: int = 8,
                 baseline_decay: float = 0.9, epsilon: float = 0.05, imitation_plans: int = 64,
                 imitation_steps: int = 30, random_state: int = 0, weights: str | Path | None = None) -> None:
        self.hidden, self.lr, self.samples = hidden, lr, samples
        self.baseline_decay, self.epsilon = baseline_decay, epsilon
        self.imitation_plans, self.imitation_steps = imitation_plans, imitation_steps
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_state)
            self.network_ = nn.Sequential(nn.Linear(NUM_FEATURES, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.baseline_ = [0.0] * num_jobs
        self.imitated_ = [False] * num_jobs
        self.steps_ = [0] * num_jobs
        if weights is not None:
            self.load(weights)

    # -- planning ---------------------------------------------------------------------------

    def plan(self, problem: PlanningProblem, rng: np.random.Generator) -> np.ndarray:
        if problem.k == len(problem.candidates):
            return np.sort(problem.candidates)
        features = device_features(problem)
        if not self.imitated_[problem.job]:
            self._imitate(problem, features, rng)
        sampled = self._reinforce(problem, features, rng)
        if rng.random() < self.epsilon:
            return random_set(problem, rng)
        with torch.no_grad():
            top = torch.topk(self.network_(features).squeeze(1), problem.k).indices.numpy()
        plans = [*sampled, problem.candidates[top]]
        costs = [problem.cost(p) for p in plans]
        return np.sort(plans[int(np.argmin(costs))])

    def _sample(self, scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """Positions of one Plackett-Luce sample of ``k`` (Gumbel top-k), in pick order."""
        keys = scores + rng.gumbel(size=len(scores))
        return np.argsort(-keys, kind="stable")[:k]

    def _step(self, loss: torch.Tensor) -> None:
        self.network_.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for weight in self.network_.parameters():
                assert weight.grad is not None
                weight.sub_(self.lr * weight.grad)

    def _imitate(self, problem: PlanningProblem, features: torch.Tensor, rng: np.random.Generator) -> None:
        plans = [random_set(problem, rng) for _ in range(self.imitation_plans)]
        best = plans[int(np.argmin([problem.cost(p) for p in plans]))]
        position = {int(d): i for i, d in enumerate(problem.candidates)}
        order = sorted((position[int(d)] for d in best), key=lambda i: problem.times[problem.candidates[i]])
        picks = torch.tensor(order)
        for _ in range(self.imitation_steps):
            self._step(-plan_log_prob(self.network_(features).squeeze(1), picks) / problem.k)
        self.imitated_[problem.job] = True

    def _reinforce(self, problem: PlanningProblem, features: torch.Tensor,
                   rng: np.random.Generator) -> list[np.ndarray]:
        """One REINFORCE step on ``samples`` sampled plans; returns those plans (device ids)."""
        scores = self.network_(features).squeeze(1)
        picks = [self._sample(scores.detach().numpy(), problem.k, rng) for _ in range(self.samples)]
        plans = [problem.candidates[p] for p in picks]
        scale = problem.alpha * float(problem.times[problem.candidates].max()) + problem.beta * 0.25 or 1.0
        rewards = np.array([-problem.cost(p) / scale for p in plans])
        job = problem.job
        if self.steps_[job] == 0:
            self.baseline_[job] = float(rewards.mean())
        advantage = torch.tensor(rewards - self.baseline_[job], dtype=torch.float32)
        log_probs = torch.stack([plan_log_prob(scores, torch.tensor(p)) for p in picks])
        self._step(-(advantage * log_probs).mean())
        decay = self.baseline_decay
        self.baseline_[job] = decay * self.baseline_[job] + (1 - decay) * float(rewards.mean())
        self.steps_[job] += 1
        return plans

    # -- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"network": {k: v.detach().clone() for k, v in self.network_.state_dict().items()},
                "baseline": list(self.baseline_), "imitated": list(self.imitated_), "steps": list(self.steps_)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network_.load_state_dict(state["network"])
        self.baseline_ = [float(b) for b in state["baseline"]]
        self.imitated_ = [bool(i) for i in state["imitated"]]
        self.steps_ = [int(s) for s in state["steps"]]

    def save(self, path: str | Path) -> Path:
        """Write the network, baselines, imitation flags and step counts to one safetensors file."""
        tensors = {f"network.{k}": v.detach().contiguous() for k, v in self.network_.state_dict().items()}
        tensors["baseline"] = torch.tensor(self.baseline_, dtype=torch.float64)
        tensors["imitated"] = torch.tensor(self.imitated_, dtype=torch.int64)
        tensors["steps"] = torch.tensor(self.steps_, dtype=torch.int64)
        save_file(tensors, str(path))
        return Path(path)

    def load(self, path: str | Path) -> None:
        """Start from a file written by :meth:`save` (one-line ConfigError when it does not fit)."""
        where = f"scheduler.rlds.weights {path}"
        try:
            tensors = load_file(str(path))
        except (OSError, SafetensorError) as exc:
            raise ConfigError(f"{where} cannot be read as safetensors ({exc}); give the rlds.safetensors "
                              "of an earlier multijob run") from None
        network = {k.removeprefix("network."): v for k, v in tensors.items() if k.startswith("network.")}
        ours = self.network_.state_dict()
        if set(network) != set(ours) or any(network[k].shape != ours[k].shape for k in ours):
            raise ConfigError(f"{where} holds a network of another shape; set scheduler.rlds.hidden to the "
                              "width it was trained with")
        self.network_.load_state_dict(network)
        jobs = len(self.baseline_)
        for key in ("baseline", "imitated", "steps"):
            if key not in tensors or tensors[key].numel() < 1:
                raise ConfigError(f"{where} has no {key!r} record; give a file written by a multijob run")
        # a policy trained on fewer jobs covers those; later jobs imitate first
        def padded(values: list[Any], fill: Any) -> list[Any]:
            return (values + [fill] * jobs)[:jobs]
        self.baseline_ = padded([float(b) for b in tensors["baseline"].tolist()], 0.0)
        self.imitated_ = padded([bool(i) for i in tensors["imitated"].tolist()], False)
        self.steps_ = padded([int(s) for s in tensors["steps"].tolist()], 0)
