"""Process workers: a round's tasks spread over forked processes, one working model each.

Workers are forked from the running process, so they share its client data (copy-on-write,
nothing is sent) and start with a copy of the working model. Each round, tasks are assigned
greedily by estimated cost (longest first, to the least-loaded worker, as pfl-research does);
a worker receives the global parameters once per batch of tasks and returns one update per
task. A task's batch order comes from its seed, so with the same thread count per process
the updates are bit-identical to the sequential backend's, whatever the worker count.

With ``backend.sum_updates`` (:class:`~fedfleet.fl.backend.SummingBackend`) a worker keeps the deltas
of its tasks, returns a summary of each, and then one weighted sum of the ones the server accepted.

A worker that dies mid-round is replaced and its tasks are trained again; workers ignore
Ctrl-C, exit when their parent does, and :meth:`WorkerBackend.close` (called when the run
ends, also after an exception or Ctrl-C) stops them all.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np
import torch
from torch import nn

from fedfleet.data.datasets import ArrayDataset
from fedfleet.errors import FedfleetError
from fedfleet.fl.backend import LocalChecks
from fedfleet.fl.client import LocalTrainer
from fedfleet.fl.messages import ClientUpdate, TrainTask
from fedfleet.fl.validation import ServerKnowledge, UpdateSummary, summarise_update
from fedfleet.threads import resolve_count

log = logging.getLogger(__name__)

MAX_RESTARTS = 3  # worker deaths tolerated per batch of tasks before the run stops
PARENT_CHECK_S = 1.0  # how often an idle worker checks that its parent is still alive

# How tasks and updates travel to workers and Ray actors and back (NumPy arrays, no module copies).
# A task: (position in the batch, index of its params array, the task without params).
Job = tuple[int, int, int, int, Any, int, "tuple[int, int] | None"]
# An update as it travels: (position, client_id, delta, num_samples, local_steps, base_version, metrics).
Result = tuple[int, int, np.ndarray, int, int, int, dict[str, float]]


class WorkerError(FedfleetError):
    """Worker processes kept dying, so the round's updates could not be trained."""


def resolve_workers(workers: int | str) -> int:
    """``"auto"`` is the number of cores this process may use; an int is taken as is."""
    return resolve_count(workers)


def task_cost(task: TrainTask, data: ArrayDataset) -> int:
    """Estimated cost of a task: the optimiser steps it will take."""
    per_epoch = math.ceil(len(data) / task.plan.batch_size)
    total = per_epoch * task.plan.epochs
    if task.steps is not None:
        first, stop = task.steps
        return max(0, min(stop, total) - first)
    return total


def assign_greedy(costs: Sequence[int], workers: int) -> list[list[int]]:
    """Longest-processing-time-first: each task (by index) to the least-loaded of ``workers``.

    Ties go to the lower worker index, so the assignment is deterministic.
    """
    loads = [0] * workers
    assignment: list[list[int]] = [[] for _ in range(workers)]
    for index in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        target = min(range(workers), key=lambda w: (loads[w], w))
        assignment[target].append(index)
        loads[target] += costs[index]
    return assignment


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection


class WorkerBackend:
    """Trains a batch of tasks on ``workers`` forked processes.

    Parameters
    ----------
    trainer : LocalTrainer
        Its working model is what every worker starts from; a batch of one task trains here.
    client_data : list of ArrayDataset
        Indexed by client id; shared with the workers by fork.
    workers : int
        Worker processes (at least 2; use :class:`~fedfleet.backends.local.LocalBackend` for 1).
    threads : int or None
        PyTorch intra-op threads in each worker; None keeps PyTorch's default.
    """

    def __init__(self, trainer: LocalTrainer, client_data: Sequence[ArrayDataset], workers: int,
                 threads: int | None = 1) -> None:
        if workers < 2:
            raise ValueError(f"WorkerBackend needs at least 2 workers, got {workers}")
        self.trainer = trainer
        self.client_data = client_data
        self.num_workers = workers
        self.threads = threads
        self._workers: list[_Worker] = []
        self._context = multiprocessing.get_context("fork")
        self._batch = 0
        self._held: tuple[list[np.ndarray], dict[int, list[Job]]] | None = None

    def run(self, tasks: Sequence[TrainTask]) -> list[ClientUpdate]:
        """Train ``tasks`` and return their updates in task order."""
        if len(tasks) < 2:
            return [self.trainer.train(task, self.client_data[task.client_id]) for task in tasks]
        return self._guarded(lambda: self._run_parallel(tasks))

    def close(self) -> None:
        """Stop every worker (they are restarted by the next :meth:`run`)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        for worker in workers:
            worker.process.join(timeout=1.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()

    def set_model(self, model: nn.Module) -> None:
        """Train on ``model`` from now on: the workers stop, and the next :meth:`run` forks them with it."""
        self.close()
        self.trainer = LocalTrainer(model, self.trainer.loss_fn)

    def __enter__(self) -> WorkerBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def train_held(self, tasks: Sequence[TrainTask], checks: LocalChecks) -> list[UpdateSummary]:
        """Train ``tasks`` on the workers, which keep the deltas; a summary per task, in task order."""
        if not tasks:
            return []
        arrays, jobs = pack_tasks(tasks)
        self._batch += 1
        self._held = (arrays, self._assign(tasks, jobs))
        batch, assigned = self._batch, self._held[1]
        replies = self._guarded(lambda: self._dispatch(
            assigned, lambda slot, fresh: ("hold", batch, arrays, assigned[slot], checks)))
        return in_task_order(replies, len(tasks))

    def sum_held(self, weights: dict[int, float]) -> torch.Tensor:
        """Σ weights[i] · delta_i over the held updates: one vector from each worker (see :meth:`train_held`)."""
        if self._held is None:
            raise RuntimeError("sum_held before train_held")
        arrays, assigned = self._held
        batch = self._batch

        def message(slot: int, fresh: bool) -> tuple[Any, ...]:
            return ("sum", batch, arrays if fresh else None, assigned[slot], own_weights(assigned[slot], weights))

        summing = {slot: jobs for slot, jobs in assigned.items() if own_weights(jobs, weights)}
        return add_sums(self._guarded(lambda: self._dispatch(summing, message)), len(arrays[0]))

    def _guarded(self, call: Any) -> Any:
        try:
            return call()
        except BaseException:
            self.close()
            raise

    def _assign(self, tasks: Sequence[TrainTask], jobs: list[Job]) -> dict[int, list[Job]]:
        return assign_jobs(tasks, jobs, self.client_data, self.num_workers)

    def _run_parallel(self, tasks: Sequence[TrainTask]) -> list[ClientUpdate]:
        arrays, jobs = pack_tasks(tasks)
        assigned = self._assign(tasks, jobs)
        replies = self._dispatch(assigned, lambda slot, fresh: ("train", arrays, assigned[slot]))
        return unpack_results([result for reply in replies.values() for result in reply], len(tasks))

    def _dispatch(self, assigned: dict[int, list[Job]], message: Any) -> dict[int, Any]:
        """Send ``message(slot, fresh)`` to each assigned worker and collect the replies by slot.

        ``fresh`` is True for a worker started since the batch was first sent (it holds nothing of it).
        A worker that dies is replaced and sent its message again, up to ``MAX_RESTARTS`` times.
        """
        fresh = set()
        while len(self._workers) <= max(assigned, default=-1):
            fresh.add(len(self._workers))
            self._workers.append(self._spawn())
        pending = dict(assigned)
        restarts = 0

        def restart(slot: int) -> None:
            nonlocal restarts
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise WorkerError(f"worker processes died {restarts} times in one round; "
                                  "check memory (dmesg) or run with backend.workers=1")
            log.warning("worker %d died; restarting it and training its %d tasks again", slot, len(pending[slot]))
            self._workers[slot].conn.close()
            self._workers[slot] = self._spawn()
            send(slot, True)

        def send(slot: int, is_fresh: bool) -> None:
            try:
                self._workers[slot].conn.send(message(slot, is_fresh))
            except OSError:  # it died since the last round
                restart(slot)

        for slot in pending:
            send(slot, slot in fresh)
        replies: dict[int, Any] = {}
        while pending:
            by_handle: dict[Any, int] = {}
            for slot in pending:
                by_handle[self._workers[slot].conn] = slot
                by_handle[self._workers[slot].process.sentinel] = slot
            for slot in {by_handle[h] for h in wait(list(by_handle))}:
                reply = self._receive(self._workers[slot])
                if reply is None:
                    restart(slot)
                    continue
                replies[slot] = reply[0]
                del pending[slot]
        return replies

    def _receive(self, worker: _Worker) -> tuple[Any] | None:
        """The worker's reply (in a 1-tuple), or None when it died before sending it."""
        try:
            if not worker.conn.poll():  # woken by its sentinel alone: it exited without replying
                return None
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            return None
        if kind == "error":
            raise payload
        return (payload,)

    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(child_conn, self.trainer, self.client_data, self.threads, os.getpid()),
            daemon=True, name="fedfleet-worker",
        )
        process.start()
        child_conn.close()
        return _Worker(process, parent_conn)


def assign_jobs(tasks: Sequence[TrainTask], jobs: list[Job], client_data: Sequence[ArrayDataset],
                workers: int) -> dict[int, list[Job]]:
    """The packed jobs of each worker slot that gets any (:func:`assign_greedy` by :func:`task_cost`)."""
    costs = [task_cost(task, client_data[task.client_id]) for task in tasks]
    assignment = [a for a in assign_greedy(costs, min(workers, len(tasks))) if a]
    return {slot: [jobs[i] for i in indices] for slot, indices in enumerate(assignment)}


def own_weights(jobs: list[Job], weights: dict[int, float]) -> dict[int, float]:
    """The entries of ``weights`` (by task position) for ``jobs``."""
    return {job[0]: weights[job[0]] for job in jobs if job[0] in weights}


def in_task_order(replies: dict[int, list[tuple[int, UpdateSummary]]], count: int) -> list[UpdateSummary]:
    """The (position, summary) replies of every slot as one list in task order."""
    summaries: list[UpdateSummary | None] = [None] * count
    for slot in sorted(replies):
        for position, summary in replies[slot]:
            summaries[position] = summary
    missing = [i for i, summary in enumerate(summaries) if summary is None]
    if missing:
        raise WorkerError(f"workers returned no summary for tasks {missing}; run with backend.sum_updates=false")
    return summaries  # type: ignore[return-value]


def add_sums(replies: dict[int, np.ndarray | None], size: int) -> torch.Tensor:
    """The workers' weighted sums added in slot order (a worker with no accepted update sends None)."""
    total = torch.zeros(size, dtype=torch.float32)
    for slot in sorted(replies):
        if replies[slot] is not None:
            total.add_(torch.from_numpy(np.array(replies[slot])))  # a copy: Ray's arrays are read-only
    return total


def pack_tasks(tasks: Sequence[TrainTask]) -> tuple[list[np.ndarray], list[Job]]:
    """Each distinct params tensor once as a NumPy array, and the tasks pointing at them (see :func:`train_job`)."""
    arrays: list[np.ndarray] = []
    slots: dict[int, int] = {}
    jobs: list[Job] = []
    for position, task in enumerate(tasks):
        key = id(task.params)
        if key not in slots:
            slots[key] = len(arrays)
            arrays.append(task.params.detach().numpy())
        jobs.append((position, slots[key], task.client_id, task.base_version, task.plan, task.seed, task.steps))
    return arrays, jobs


def unpack_results(results: list[Result], count: int) -> list[ClientUpdate]:
    """The updates of :func:`train_job` results in task order (deltas copied: Ray's arrays are read-only)."""
    ordered: list[ClientUpdate | None] = [None] * count
    for position, client_id, delta, num_samples, local_steps, base_version, metrics in results:
        ordered[position] = ClientUpdate(client_id, torch.tensor(delta), num_samples, local_steps,
                                         base_version, metrics)
    missing = [i for i, update in enumerate(ordered) if update is None]
    if missing:
        raise WorkerError(f"workers returned no update for tasks {missing}; run with backend.workers=1")
    return ordered  # type: ignore[return-value]


def _serve(conn: Connection, trainer: LocalTrainer, client_data: Sequence[ArrayDataset], threads: int | None,
           parent: int) -> None:
    """A worker's loop: answer each message it receives until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if threads is not None:
        torch.set_num_threads(threads)
    held = HeldBatch()
    while True:
        if not conn.poll(PARENT_CHECK_S):
            if os.getppid() != parent:
                return
            continue
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        try:
            reply = _answer(message, trainer, client_data, held)
        except Exception as exc:  # the parent re-raises it
            conn.send(("error", exc))
            continue
        conn.send(("ok", reply))


def _answer(message: tuple[Any, ...], trainer: LocalTrainer, client_data: Sequence[ArrayDataset],
            held: HeldBatch) -> Any:
    kind, *body = message
    if kind == "train":
        arrays, jobs = body
        params = [torch.from_numpy(array) for array in arrays]
        return [train_job(trainer, client_data, params, job) for job in jobs]
    if kind == "hold":
        batch, arrays, jobs, checks = body
        held.train(batch, trainer, client_data, arrays, jobs)
        return held.summaries(checks)
    batch, arrays, jobs, weights = body
    held.train(batch, trainer, client_data, arrays, jobs)
    return held.weighted_sum(weights)


class HeldBatch:
    """A worker's updates of its current batch of jobs, kept until the server asks for their weighted sum."""

    def __init__(self) -> None:
        self.batch = -1
        self.updates: dict[int, ClientUpdate] = {}
        self.params: list[torch.Tensor] = []
        self.jobs: list[Job] = []

    def train(self, batch: int, trainer: LocalTrainer,
              client_data: Sequence[ArrayDataset] | Mapping[int, ArrayDataset],
              arrays: list[np.ndarray] | None, jobs: list[Job]) -> None:
        """Train ``jobs`` of ``batch`` from ``arrays`` unless this worker already holds that batch."""
        if batch == self.batch:
            return
        if arrays is None:
            raise RuntimeError(f"worker does not hold batch {batch} and was not sent its parameters")
        self.params = [torch.from_numpy(array) for array in arrays]
        self.jobs = jobs
        self.updates = {job[0]: train_task(trainer, client_data, self.params, job) for job in jobs}
        self.batch = batch

    def summaries(self, checks: LocalChecks) -> list[tuple[int, UpdateSummary]]:
        """(task position, summary) of each held update, judged with what the server sent."""
        out = []
        for job in self.jobs:
            position, slot, plan = job[0], job[1], job[4]
            server = ServerKnowledge(self.params[slot], checks.num_samples, plan, checks.reference_norm)
            out.append((position, summarise_update(self.updates[position], server, checks.max_norm_ratio)))
        return out

    def weighted_sum(self, weights: dict[int, float]) -> np.ndarray | None:
        """Σ weights[i] · delta_i over the held updates ``weights`` names (in position order); None if none."""
        if not weights:
            return None
        total = torch.zeros_like(self.updates[next(iter(weights))].delta)
        for position in sorted(weights):
            total.add_(self.updates[position].delta, alpha=float(weights[position]))
        return total.numpy()


def train_task(trainer: LocalTrainer, client_data: Sequence[ArrayDataset] | Mapping[int, ArrayDataset],
               params: list[torch.Tensor], job: Job) -> ClientUpdate:
    """Train one packed task from ``params[slot]`` on ``client_data[client_id]``."""
    _, slot, client_id, base_version, plan, seed, steps = job
    return trainer.train(TrainTask(client_id, params[slot], base_version, plan, seed, steps), client_data[client_id])


def train_job(trainer: LocalTrainer, client_data: Sequence[ArrayDataset] | Mapping[int, ArrayDataset],
              params: list[torch.Tensor], job: Job) -> Result:
    """Train one packed task (see :func:`train_task`) and pack its update to travel."""
    position = job[0]
    update = train_task(trainer, client_data, params, job)
    return (position, update.client_id, update.delta.numpy(), update.num_samples, update.local_steps,
            update.base_version, update.metrics)
