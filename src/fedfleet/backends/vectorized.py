"""Vectorised cohorts: a round's clients trained at once with ``torch.func`` (functional_call, vmap, grad).

Every client of the round starts from the same global parameters; their copies are stacked and one
batched step trains all of them. Each client keeps its own batch schedule (the one
:class:`~fedfleet.fl.client.LocalTrainer` trains on: :func:`~fedfleet.fl.client.batch_schedule`):
batches are padded to ``batch_size`` and a mask weights the real samples, so a short last batch is
a mean over its real samples. The result equals
sequential training up to float rounding (parameters within 1e-5 after a round). A client whose
schedule has ended leaves the batch, so short clients cost nothing while long ones finish.

Supported: plain SGD (no momentum, weight decay or FedProx term), cross-entropy, models without
buffers, dropout or batch-norm, whole tasks (no step slices). Anything else goes to the fallback
backend, and the first time that happens the reason is logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from fedfleet.data.datasets import ArrayDataset
from fedfleet.fl.backend import Backend
from fedfleet.fl.client import LocalTrainer, batch_schedule
from fedfleet.fl.device_degree import DEGREE_METRIC, local_degree
from fedfleet.fl.messages import ClientUpdate, TrainTask
from fedfleet.fl.params import set_flat

log = logging.getLogger(__name__)

STATEFUL = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.modules.batchnorm._NormBase)


class VectorizedBackend:
    """Trains a round's tasks together in this process; falls back to ``fallback`` where it cannot.

    Parameters
    ----------
    trainer : LocalTrainer
        Its model gives the architecture (its parameters are overwritten).
    client_data : list of ArrayDataset
        Indexed by client id.
    fallback : Backend
        Runs what this backend does not support.
    """

    def __init__(self, trainer: LocalTrainer, client_data: Sequence[ArrayDataset], fallback: Backend) -> None:
        self.trainer = trainer
        self.client_data = client_data
        self.fallback = fallback
        self._model_reason = self._model_unsupported()
        self._warned = False

    def run(self, tasks: Sequence[TrainTask]) -> list[ClientUpdate]:
        """Train ``tasks`` and return their updates in task order."""
        if len(tasks) < 2:
            return self.fallback.run(tasks)
        reason = self._model_reason or _tasks_unsupported(tasks)
        if reason is not None:
            if not self._warned:
                log.warning("backend.vectorize: %s; these clients train one by one", reason)
                self._warned = True
            return self.fallback.run(tasks)
        return self._train(tasks)

    def close(self) -> None:
        self.fallback.close()

    def set_model(self, model: nn.Module) -> None:
        self.trainer = LocalTrainer(model, self.trainer.loss_fn)
        self._model_reason = self._model_unsupported()
        self.fallback.set_model(model)

    def _model_unsupported(self) -> str | None:
        model = self.trainer.model
        if any(True for _ in model.buffers()):
            return "the model has buffers (e.g. batch-norm statistics)"
        if any(isinstance(module, STATEFUL) for module in model.modules()):
            return "the model has dropout or normalisation layers"
        if type(self.trainer.loss_fn) is not nn.CrossEntropyLoss or self.trainer.loss_fn.reduction != "mean":
            return "the loss is not plain cross-entropy"
        return None

    def _train(self, tasks: Sequence[TrainTask]) -> list[ClientUpdate]:
        model, plan = self.trainer.model, tasks[0].plan
        set_flat(model, tasks[0].params)
        k, size = len(tasks), plan.batch_size
        datas = [self.client_data[task.client_id] for task in tasks]
        schedules = [list(batch_schedule(len(data), size, plan.epochs, task.seed))
                     for task, data in zip(tasks, datas, strict=True)]
        steps = max(len(s) for s in schedules)
        params = {name: p.detach().unsqueeze(0).repeat(k, *([1] * p.dim())) for name, p in model.named_parameters()}

        def batch_loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
            losses = nn.functional.cross_entropy(functional_call(model, p, (x,)), y, reduction="none")
            return (losses * mask).sum() / mask.sum().clamp(min=1.0)

        step_all = vmap(grad_and_value(batch_loss))
        loss_sums = torch.zeros(k, dtype=torch.float64)
        model.train()
        for step in range(steps):
            active = [c for c, schedule in enumerate(schedules) if step < len(schedule)]
            xs, ys, masks = [], [], []
            for c in active:
                batch = schedules[c][step]
                padded = torch.zeros(size, dtype=torch.long)
                padded[: len(batch)] = batch
                mask = torch.zeros(size)
                mask[: len(batch)] = 1.0
                xs.append(datas[c].x[padded])
                ys.append(datas[c].y[padded])
                masks.append(mask)
            rows = torch.tensor(active)
            everyone = len(active) == k
            current = params if everyone else {name: value[rows] for name, value in params.items()}
            grads, losses = step_all(current, torch.stack(xs), torch.stack(ys), torch.stack(masks))
            with torch.no_grad():
                for name, value in params.items():
                    if everyone:
                        value -= plan.lr * grads[name]
                    else:
                        value[rows] -= plan.lr * grads[name]
            loss_sums[rows] += losses.detach().to(torch.float64)
        flat = torch.cat([params[name].reshape(k, -1) for name, _ in model.named_parameters()], dim=1)
        updates = []
        for index, (task, data, schedule) in enumerate(zip(tasks, datas, schedules, strict=True)):
            metrics = {"train_loss": float(loss_sums[index]) / max(len(schedule), 1)}
            if plan.label_reference is not None:
                metrics[DEGREE_METRIC] = local_degree(data.y, plan.label_reference)
            updates.append(ClientUpdate(task.client_id, flat[index] - task.params, len(data), len(schedule),
                                        task.base_version, metrics))
        return updates


def _tasks_unsupported(tasks: Sequence[TrainTask]) -> str | None:
    first = tasks[0]
    if any(task.params is not first.params or task.plan != first.plan for task in tasks):
        return "the round's tasks start from different parameters or plans"
    if any(task.steps is not None for task in tasks):
        return "tasks run slices of their steps"
    plan = first.plan
    if plan.momentum or plan.weight_decay or plan.prox_mu:
        return "momentum, weight decay and FedProx's term are not vectorised"
    return None
