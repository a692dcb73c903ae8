"""Local training on one reusable working model: load params, train, diff, hand back."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from fedfleet.data.datasets import ArrayDataset
from fedfleet.fl.device_degree import DEGREE_METRIC, local_degree
from fedfleet.fl.messages import ClientUpdate, TrainTask
from fedfleet.fl.params import get_flat, set_flat
from fedfleet.threads import torch_threads


class LocalTrainer:
    """Runs local SGD for any client on one working copy of the model.

    Parameters
    ----------
    model : nn.Module
        The working model; its parameters are overwritten by every task.
    loss_fn : nn.Module, optional
        Defaults to cross-entropy.
    """

    def __init__(self, model: nn.Module, loss_fn: nn.Module | None = None) -> None:
        self.model = model
        self.loss_fn = loss_fn or nn.CrossEntropyLoss()

    def train(self, task: TrainTask, data: ArrayDataset) -> ClientUpdate:
        """Train from ``task.params`` on ``data`` and return the parameter delta.

        With ``task.steps = (first, stop)`` only those steps of the plan's batch schedule run
        (the schedule is the same as for the whole task), so a task split into segments that
        each start from the previous segment's parameters trains exactly as one task would
        (the optimiser's momentum restarts at each segment).
        """
        plan = task.plan
        first, stop = task.steps or (0, None)
        set_flat(self.model, task.params)
        self.model.train()
        anchor = [p.detach().clone() for p in self.model.parameters()] if plan.prox_mu > 0 else None
        optimizer = torch.optim.SGD(
            self.model.parameters(), lr=plan.lr, momentum=plan.momentum, weight_decay=plan.weight_decay
        )
        steps, loss_sum = 0, 0.0
        for index, batch in enumerate(batch_schedule(len(data), plan.batch_size, plan.epochs, task.seed), start=1):
            if index <= first or (stop is not None and index > stop):
                continue
            loss = self.loss_fn(self.model(data.x[batch]), data.y[batch])
            if anchor is not None:
                loss = loss + proximal_term(self.model, anchor, plan.prox_mu)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            loss_sum += loss.item()
        delta = get_flat(self.model) - task.params
        metrics = {"train_loss": loss_sum / max(steps, 1)}
        if plan.label_reference is not None:
            metrics[DEGREE_METRIC] = local_degree(data.y, plan.label_reference)
        return ClientUpdate(
            client_id=task.client_id,
            delta=delta,
            num_samples=len(data),
            local_steps=steps,
            base_version=task.base_version,
            metrics=metrics,
        )


def batch_schedule(num_samples: int, batch_size: int, epochs: int, seed: int) -> Iterator[torch.Tensor]:
    """A task's batches of sample indices: a fresh permutation per epoch, drawn from the task seed, split."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        yield from torch.randperm(num_samples, generator=generator).split(batch_size)


def proximal_term(model: nn.Module, anchor: list[torch.Tensor], mu: float) -> torch.Tensor:
    """FedProx's ``mu/2 * ||w - w_anchor||^2`` over the model's parameters."""
    squared = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True))
    return 0.5 * mu * squared  # type: ignore[return-value]


@torch.no_grad()
def evaluate(model: nn.Module, data: ArrayDataset, batch_size: int = 1000,
             threads: int | str | None = None) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``data``, with ``threads`` intra-op threads
    (``"auto"``: the cores; None: as set)."""
    with torch_threads(threads):
        return _evaluate(model, data, batch_size)


def _evaluate(model: nn.Module, data: ArrayDataset, batch_size: int) -> tuple[float, float]:
    model.eval()
    correct, loss_sum = 0, 0.0
    for start in range(0, len(data), batch_size):
        x, y = data.x[start : start + batch_size], data.y[start : start + batch_size]
        logits = model(x)
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        correct += int((logits.argmax(dim=1) == y).sum())
    return correct / len(data), loss_sum / len(data)
