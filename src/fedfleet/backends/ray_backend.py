"""Ray actors: a round's tasks spread over a Ray cluster (or this machine), one working model per actor.

Client data go to Ray's object store once, on the first round; each actor fetches the clients it is
given and keeps them. Tasks are packed, assigned and trained as by the worker backend (longest first, to
the least-loaded actor; the global parameters once per batch, one update per task back). A task's
batch order comes from its seed, so with the same thread count the updates are bit-identical to the
sequential backend's. With ``backend.sum_updates`` an actor keeps its deltas and returns summaries, then
one weighted sum (:class:`~fedfleet.fl.backend.SummingBackend`). An actor that dies is replaced and
its tasks trained again (up to ``MAX_RESTARTS`` times per batch). :meth:`RayBackend.close` kills the
actors and, when this backend started Ray, shuts it down.

``address=None`` starts Ray on this machine with ``workers`` CPUs; ``"auto"`` or ``"ray://host:port"``
joins a running cluster (``ray start --head`` on one node, ``ray start --address=...`` on the others).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from fedfleet.backends.workers import (
    MAX_RESTARTS,
    HeldBatch,
    Job,
    Result,
    WorkerError,
    add_sums,
    assign_jobs,
    in_task_order,
    own_weights,
    pack_tasks,
    train_job,
    unpack_results,
)
from fedfleet.data.datasets import ArrayDataset
from fedfleet.errors import FedfleetError
from fedfleet.fl.backend import LocalChecks
from fedfleet.fl.client import LocalTrainer
from fedfleet.fl.messages import ClientUpdate, TrainTask
from fedfleet.fl.validation import UpdateSummary

log = logging.getLogger(__name__)


class RayUnavailable(FedfleetError):
    """Ray is not installed or could not start or join its cluster."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable("backend.name=ray needs Ray: pip install 'fedfleet[ray]'") from None
    return ray


class _Actor:
    """One working model and the client data it has been sent; trains batches of packed tasks."""

    def __init__(self, trainer: LocalTrainer, threads: int | None) -> None:
        if threads is not None:
            torch.set_num_threads(threads)
        self.trainer = trainer
        self.data: dict[int, ArrayDataset] = {}
        self.held = HeldBatch()

    def train(self, arrays: list[np.ndarray], jobs: list[Job], data_refs: dict[int, list[Any]]) -> list[Result]:
        self._fetch(data_refs)
        params = [torch.from_numpy(array) for array in arrays]
        return [train_job(self.trainer, self.data, params, job) for job in jobs]

    def hold(self, batch: int, arrays: list[np.ndarray], jobs: list[Job], data_refs: dict[int, list[Any]],
             checks: LocalChecks) -> list[tuple[int, UpdateSummary]]:
        self._fetch(data_refs)
        self.held.train(batch, self.trainer, self.data, arrays, jobs)
        return self.held.summaries(checks)

    def sum(self, batch: int, arrays: list[np.ndarray], jobs: list[Job], data_refs: dict[int, list[Any]],
            weights: dict[int, float]) -> np.ndarray | None:
        self._fetch(data_refs)
        self.held.train(batch, self.trainer, self.data, arrays, jobs)  # a replacement actor trains them again
        return self.held.weighted_sum(weights)

    def _fetch(self, data_refs: dict[int, list[Any]]) -> None:
        ray = _ray()
        for client_id, [ref] in data_refs.items():
            if client_id not in self.data:
                x, y, classes = ray.get(ref)
                self.data[client_id] = ArrayDataset(torch.from_numpy(x), torch.from_numpy(y), classes)


class RayBackend:
    """Trains a batch of tasks on ``workers`` Ray actors.

    Parameters
    ----------
    trainer : LocalTrainer
        Its working model is what every actor starts from.
    client_data : list of ArrayDataset
        Indexed by client id; put in the object store on the first :meth:`run`.
    workers : int
        Actors (and, when Ray is started here, its CPUs).
    address : str, optional
        None starts Ray here; ``"auto"`` or ``"ray://host:port"`` joins a running cluster.
    threads : int or None
        PyTorch intra-op threads in each actor; None keeps PyTorch's default.
    """

    def __init__(self, trainer: LocalTrainer, client_data: Sequence[ArrayDataset], workers: int,
                 address: str | None = None, threads: int | None = 1) -> None:
        self.trainer = trainer
        self.client_data = client_data
        self.num_workers = workers
        self.address = address
        self.threads = threads
        self._actors: list[Any] = []
        self._refs: list[Any] = []
        self._started_ray = False
        self._batch = 0
        self._held: tuple[Any, dict[int, list[Job]], int] | None = None

    def run(self, tasks: Sequence[TrainTask]) -> list[ClientUpdate]:
        """Train ``tasks`` and return their updates in task order."""
        if not tasks:
            return []
        ray = self._connect()
        arrays, jobs = pack_tasks(tasks)
        assigned = self._assign(tasks, jobs)
        arrays_ref = ray.put(arrays)
        replies = self._dispatch(assigned, lambda actor, slot: actor.train.remote(
            arrays_ref, assigned[slot], self._data_refs(assigned[slot])))
        return unpack_results([result for reply in replies.values() for result in reply], len(tasks))

    def train_held(self, tasks: Sequence[TrainTask], checks: LocalChecks) -> list[UpdateSummary]:
        """Train ``tasks`` on the actors, which keep the deltas; a summary per task, in task order."""
        if not tasks:
            return []
        ray = self._connect()
        arrays, jobs = pack_tasks(tasks)
        self._batch += 1
        batch, assigned, arrays_ref = self._batch, self._assign(tasks, jobs), ray.put(arrays)
        self._held = (arrays_ref, assigned, len(arrays[0]))
        replies = self._dispatch(assigned, lambda actor, slot: actor.hold.remote(
            batch, arrays_ref, assigned[slot], self._data_refs(assigned[slot]), checks))
        return in_task_order(replies, len(tasks))

    def sum_held(self, weights: dict[int, float]) -> torch.Tensor:
        """Σ weights[i] · delta_i over the held updates: one vector from each actor (see :meth:`train_held`)."""
        if self._held is None:
            raise RuntimeError("sum_held before train_held")
        arrays_ref, assigned, size = self._held
        batch = self._batch

        def submit(actor: Any, slot: int) -> Any:
            return actor.sum.remote(batch, arrays_ref, assigned[slot], self._data_refs(assigned[slot]),
                                    own_weights(assigned[slot], weights))

        summing = {slot: jobs for slot, jobs in assigned.items() if own_weights(jobs, weights)}
        return add_sums(self._dispatch(summing, submit), size)

    def _assign(self, tasks: Sequence[TrainTask], jobs: list[Job]) -> dict[int, list[Job]]:
        return assign_jobs(tasks, jobs, self.client_data, self.num_workers)

    def _dispatch(self, assigned: dict[int, list[Job]], submit: Any) -> dict[int, Any]:
        """``submit(actor, slot)`` for each assigned actor; replies by slot (a dead actor replaced, resubmitted)."""
        ray = _ray()
        while len(self._actors) <= max(assigned, default=-1):
            self._actors.append(self._new_actor())
        calls = {submit(self._actors[slot], slot): slot for slot in assigned}
        replies: dict[int, Any] = {}
        restarts = 0
        while calls:
            [done], _ = ray.wait(list(calls), num_returns=1)
            slot = calls.pop(done)
            try:
                replies[slot] = ray.get(done)
            except ray.exceptions.RayActorError:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise WorkerError(f"Ray actors died {restarts} times in one round; check the cluster's "
                                      "logs (ray status) or run with backend.name=local") from None
                log.warning("Ray actor %d died; replacing it and training its %d tasks again", slot,
                            len(assigned[slot]))
                self._actors[slot] = self._new_actor()
                calls[submit(self._actors[slot], slot)] = slot
        return replies

    def close(self) -> None:
        """Kill the actors; shut Ray down when this backend started it."""
        if not self._actors and not self._started_ray:
            return
        ray = _ray()
        if ray.is_initialized():  # another backend in this process may have shut it down already
            for actor in self._actors:
                ray.kill(actor)
        self._actors, self._refs = [], []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    def set_model(self, model: nn.Module) -> None:
        """Train on ``model`` from now on: the actors are replaced (the client data stay in the object store)."""
        if self._actors:
            ray = _ray()
            if ray.is_initialized():
                for actor in self._actors:
                    ray.kill(actor)
            self._actors = []
        self.trainer = LocalTrainer(model, self.trainer.loss_fn)

    def _data_refs(self, jobs: list[Job]) -> dict[int, list[Any]]:
        """The object-store references of the jobs' clients (each in a list: Ray passes it as is)."""
        return {client_id: [self._refs[client_id]] for client_id in {job[2] for job in jobs}}

    def _new_actor(self) -> Any:
        ray = _ray()
        remote = ray.remote(num_cpus=1, max_restarts=0)(_Actor)
        return remote.remote(self.trainer, self.threads)

    def _connect(self) -> Any:
        ray = _ray()
        if not ray.is_initialized():
            try:
                if self.address is None:
                    ray.init(num_cpus=self.num_workers, include_dashboard=False, log_to_driver=False,
                             configure_logging=False)
                else:
                    ray.init(address=self.address, log_to_driver=False, configure_logging=False)
            except Exception as exc:  # Ray raises many kinds here (connection, permissions, resources)
                raise RayUnavailable(f"Ray could not start or join {self.address or 'a local cluster'}: "
                                     f"{type(exc).__name__}: {exc}") from None
            self._started_ray = self.address is None
        if not self._refs:
            self._refs = [ray.put((d.x.numpy(), d.y.numpy(), d.classes)) for d in self.client_data]
        return ray
