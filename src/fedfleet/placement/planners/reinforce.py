"""HeterPS's learning scheduler: an LSTM policy over layers trained with REINFORCE.

The policy reads the layers in order (features: each type's compute time per sample
against the target's time budget, each type's memory need against its capacity, the
output size) and emits an action per layer: a device type (the layer joins the stage
before when that is on the same type) or *split*, a new stage on the previous layer's
type (a same-type split). Each iteration samples a batch of
schemes, rewards them with the cost model (−log cost when feasible; below every feasible
scheme by the violation otherwise), standardises the rewards within the batch as the
baseline, and takes a policy-gradient step. The best feasible scheme sampled is kept.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fedfleet.placement.catalog import GIB
from fedfleet.placement.cost import PlacementProblem, Run, merge_stages
from fedfleet.placement.planners.base import Planner
from fedfleet.threads import torch_threads


class _Policy(nn.Module):
    def __init__(self, features: int, types: int, hidden: int, stay_bonus: float) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(features + types, hidden)
        self.head = nn.Linear(hidden, types + 1)  # a logit per type, then the split action's
        self.types = types
        self.stay_bonus = stay_bonus  # added to the previous layer's type: stages are runs

    def sample(self, features: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Types (batch, L), split flags (batch, L) and log-probabilities (batch,), autoregressively.

        ``splits[b, l]`` is True where layer l starts a new stage on layer l-1's type.
        """
        layers = features.shape[0]
        previous = torch.zeros(batch, self.types)  # one-hot of the previous layer's type
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        types, splits, log_probs = [], [], []
        no_split = torch.zeros(batch, 1)
        for layer in range(layers):
            step = torch.cat([features[layer].expand(batch, -1), previous], dim=1)  # (B, F+T)
            state = self.cell(step, state)
            bonus = torch.cat([self.stay_bonus * previous, no_split], dim=1)  # (B, T+1)
            logits = self.head(state[0]) + bonus
            if layer == 0:  # nothing to split from
                logits = logits.index_fill(1, torch.tensor([self.types]), float("-inf"))
            distribution = torch.distributions.Categorical(logits=logits)
            action = distribution.sample()  # (B,)
            log_probs.append(distribution.log_prob(action))
            split = action == self.types
            choice = torch.where(split, previous.argmax(dim=1), action)  # (B,)
            types.append(choice)
            splits.append(split)
            previous = nn.functional.one_hot(choice, self.types).float()
        return torch.stack(types, dim=1), torch.stack(splits, dim=1), torch.stack(log_probs, dim=1).sum(dim=1)


def layer_features(problem: PlacementProblem) -> torch.Tensor:
    """Per-layer policy inputs, shape (L, 2T+1), standardised over layers."""
    budget = 1.0 / problem.job.throughput_target  # seconds per sample the target allows
    capacity = np.array([d.memory_gb * GIB for d in problem.catalog.devices])
    params = np.array([layer.param_bytes for layer in problem.profile.layers])
    activations = np.array([layer.activation_bytes for layer in problem.profile.layers])
    columns = [
        np.log(problem.sample_seconds / budget + 1e-12),  # (L, T)
        np.log(problem.job.state_factor * params[:, None] / capacity + 1e-12),  # (L, T)
        np.log(activations[:, None] + 1.0),  # (L, 1)
    ]
    table = np.concatenate(columns, axis=1)
    table = (table - table.mean(axis=0)) / (table.std(axis=0) + 1e-6)
    return torch.as_tensor(table, dtype=torch.float32)


class ReinforcePlanner(Planner):
    """LSTM policy over layers trained by REINFORCE on the cost model.

    Parameters
    ----------
    hidden : int
        LSTM width.
    iterations : int
        Policy-gradient steps.
    batch : int
        Schemes sampled per step.
    lr : float
        Adam learning rate.
    stay_bonus : float
        Logit bonus for repeating the previous layer's type, so that early samples form
        a few long stages rather than one stage per layer.
    random_state : int or None
        Seed of the policy's initial weights and of the sampling.

    Attributes
    ----------
    history_ : list of float
        Best feasible cost after each step (inf before the first feasible scheme).
    """

    def __init__(self, hidden: int = 32, iterations: int = 150, batch: int = 32, lr: float = 0.02,
                 stay_bonus: float = 3.0, random_state: int | None = None) -> None:
        self.hidden = hidden
        self.stay_bonus = stay_bonus
        self.iterations = iterations
        self.batch = batch
        self.lr = lr
        self.random_state = random_state

    def _search(self, problem: PlacementProblem) -> list[Run] | None:
        with torch_threads(1), torch.random.fork_rng():  # a 32-unit LSTM gains nothing from more threads
            torch.manual_seed(0 if self.random_state is None else self.random_state)
            return self._train(problem)

    def _train(self, problem: PlacementProblem) -> list[Run] | None:
        features = layer_features(problem)
        policy = _Policy(features.shape[1], problem.num_types, self.hidden, self.stay_bonus)
        optimiser = torch.optim.Adam(policy.parameters(), lr=self.lr)
        best_cost, best_runs = np.inf, None
        self.history_: list[float] = []
        for _ in range(self.iterations):
            schemes, splits, log_probs = policy.sample(features, self.batch)
            sampled = [merge_stages(scheme, set(np.flatnonzero(split).tolist()))
                       for scheme, split in zip(schemes.numpy(), splits.numpy(), strict=True)]
            scores = [problem.score_runs(runs) for runs in sampled]
            self.evaluations_ += len(scores)
            for runs, (violation, cost) in zip(sampled, scores, strict=True):
                if violation == 0 and cost < best_cost:
                    best_cost, best_runs = cost, runs
            rewards = torch.as_tensor(self._rewards(scores), dtype=torch.float32)
            advantage = (rewards - rewards.mean()) / (rewards.std() + 1e-6)
            loss = -(advantage * log_probs).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            self.history_.append(best_cost)
        return best_runs

    @staticmethod
    def _rewards(scores: list[tuple[float, float]]) -> np.ndarray:
        """−log cost for feasible schemes; infeasible ones rank below all of them by violation."""
        feasible = [-np.log(cost) for violation, cost in scores if violation == 0]
        floor = min(feasible) if feasible else 0.0
        return np.array([-np.log(cost) if violation == 0 else floor - 1.0 - violation
                         for violation, cost in scores])
