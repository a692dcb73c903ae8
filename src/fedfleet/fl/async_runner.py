"""The asynchronous loop on the event queue: dispatch → (refresh) → arrive → validate → aggregate.

Up to ``concurrency`` devices train at once. Each arrival is validated and handed to the
strategy at the virtual moment it reaches the server; a new global version is made whenever
the strategy returns one, and idle online devices are dispatched with the current version.
Local training runs when the clock reaches the moment its inputs exist: a whole task uses only
its base version, so it is trained at the latest at its arrival, together with every other
in-flight whole task that will arrive (a parallel backend trains them side by side; the
updates are kept with their tasks until they arrive). FedASMU's first segment is trained at the
refresh request and its second segment at the arrival, so no computation uses a version newer
than the clock.
All state lives in :class:`RunState` as plain data and tensors, so a resumed run continues
the uninterrupted one event for event.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import torch

from fedfleet.config import RunConfig
from fedfleet.errors import ConfigError
from fedfleet.fl.checkpoint import RunState, save_checkpoint
from fedfleet.fl.client import evaluate
from fedfleet.fl.events import Event, EventQueue, Halt
from fedfleet.fl.faults import Availability
from fedfleet.fl.fleet import BYTES_PER_PARAM
from fedfleet.fl.history import summarise
from fedfleet.fl.messages import ClientUpdate, LocalTrainingPlan, TrainTask
from fedfleet.fl.params import get_flat, set_flat
from fedfleet.fl.run_dir import RunDirectory
from fedfleet.fl.strategies import Arrival, AsyncStrategy, FederationInfo
from fedfleet.fl.sync_runner import RunnerParts, initial_state, plan_from_config, task_seed
from fedfleet.fl.validation import Rejection, ServerKnowledge, UpdateSummary, ValidationHistory, validate_updates

log = logging.getLogger(__name__)

ARRIVE, REFRESH, TIMEOUT, DISPATCH = "arrive", "refresh", "timeout", "dispatch"
SERVER_RANK, DISPATCH_RANK = 0, 1  # simultaneous arrivals are all handled before devices are dispatched
RETRY_S = 10.0  # virtual seconds before asking again when no device answered and none is training


def staleness_stats(values: list[int]) -> dict[str, Any]:
    """Mean, max and counts by value of the staleness of a window of arrivals."""
    counts: dict[str, int] = {}
    for value in sorted(values):
        counts[str(value)] = counts.get(str(value), 0) + 1
    return {
        "staleness_mean": float(np.mean(values)) if values else None,
        "staleness_max": max(values) if values else None,
        "staleness_counts": counts,
        "arrivals": len(values),
    }


def repeat_seed(seed: int, version: int, client_id: int, repeat: int) -> int:
    """The batch-order seed of a task: the sync runner's for the first task of a client at a version."""
    if repeat == 0:
        return task_seed(seed, version, client_id)
    return int(np.random.SeedSequence([seed, version, client_id, repeat]).generate_state(1)[0])


class AsyncRunner:
    """Runs until ``train.rounds`` new versions, ``train.max_virtual_time_s``, or no device can answer.

    Parameters
    ----------
    config : RunConfig
    parts : RunnerParts
        ``parts.strategy`` must be an :class:`AsyncStrategy`.
    run_dir : RunDirectory, optional
    availability : Availability, optional
        When each device is online (default: always).
    """

    def __init__(self, config: RunConfig, parts: RunnerParts, run_dir: RunDirectory | None = None,
                 availability: Availability | None = None) -> None:
        if not isinstance(parts.strategy, AsyncStrategy):
            raise ConfigError(f"strategy {parts.strategy.name!r} cannot run with train.mode=async")
        if parts.server_hooks:
            raise ConfigError("server hooks (e.g. pruning) need train.mode=sync: asynchronous updates in flight "
                              "were trained on the model a hook would replace")
        self.config, self.parts, self.run_dir = config, parts, run_dir
        self.strategy: AsyncStrategy = parts.strategy
        self.availability = availability or Availability()
        self.plan = plan_from_config(config)
        self.concurrency = config.train.concurrency or config.train.clients_per_round
        self.sizes = parts.data.num_samples()
        self.strategy.setup(FederationInfo(self.sizes, parts.data.label_histograms()))
        params = get_flat(parts.model)
        self.message_bytes = params.numel() * BYTES_PER_PARAM
        queue = EventQueue()
        queue.push(0.0, DISPATCH, rank=DISPATCH_RANK)
        extra = {
            "queue": queue.state_dict(),
            "tasks": {},  # task id -> the in-flight task (plain data and tensors)
            "next_task": 0,
            "repeats": {},  # "client" -> [version, tasks of that client at that version]
            "window": [],  # staleness of the arrivals since the last record
            "losses": [],  # train losses of the accepted updates since the last record
            "staleness_counts": {},  # over the whole run
            "participation": [0] * len(self.sizes),  # accepted updates per device
            "stop_reason": None,
        }
        self.state = initial_state(config, params, ("failed", "timed_out"), extra)
        self.queue = queue
        self.rng = np.random.default_rng()
        self.events: list[tuple[float, str, dict[str, Any]]] = []  # handled events, in order (this session)

    def resume_from(self, state: RunState) -> None:
        """Continue from a checkpointed state."""
        self.state = state
        self.strategy.load_state_dict(state.strategy_state)

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.state.extra["tasks"]

    def run(self) -> dict[str, Any]:
        """Handle events until the budget is spent or nothing can happen any more; return the summary.

        The backend's workers stop when it returns or raises.
        """
        try:
            return self._run()
        finally:
            self.parts.backend.close()

    def _run(self) -> dict[str, Any]:
        config, state, extra = self.config, self.state, self.state.extra
        self.queue = EventQueue.from_state(extra["queue"])
        self.rng.bit_generator.state = state.rng_state
        started = time.perf_counter() - state.wall_time_s
        rounds, limit = config.train.rounds, config.train.max_virtual_time_s
        handlers = {DISPATCH: self._dispatch, ARRIVE: self._arrive, REFRESH: self._refresh, TIMEOUT: self._timeout}
        if self.run_dir:
            self.run_dir.write_metrics(state.records)
            self.run_dir.drop_rejections_after(state.step)
        for callback in self.parts.callbacks:
            callback.on_start(rounds, state.step)
        version = state.step

        def after(event: Event) -> None:
            nonlocal version
            self.events.append((event.time, event.kind, dict(event.data)))
            state.clock = self.queue.now
            state.wall_time_s = time.perf_counter() - started
            if state.step > version:
                self._after_version(started)
            version = state.step

        halt = self.queue.run(handlers, lambda: state.step < rounds and extra["stop_reason"] is None, after, limit)
        if halt is Halt.EMPTY:
            extra["stop_reason"] = self._why_nothing_happens()
        elif halt is Halt.LIMIT:
            assert limit is not None  # only a limit halts there
            extra["stop_reason"] = f"train.max_virtual_time_s={limit:g} reached"
            state.clock = limit
        if extra["stop_reason"] is not None:
            log.warning("async run stopped at version %d: %s", state.step, extra["stop_reason"])
        if not state.records or state.records[-1]["version"] != state.step:
            state.wall_time_s = time.perf_counter() - started
            self._record()
        return self._finish()

    def _after_version(self, started: float) -> None:
        state = self.state
        record = None
        if state.step % self.config.train.eval_every == 0 or state.step == self.config.train.rounds:
            record = self._record()
        every = self.config.checkpoint_every
        if self.run_dir is not None and every > 0 and state.step % every == 0:
            state.extra["queue"] = self.queue.state_dict()
            state.strategy_state = self.strategy.state_dict()
            state.rng_state = dict(self.rng.bit_generator.state)
            save_checkpoint(self.run_dir.checkpoint_dir, state)
        for callback in self.parts.callbacks:
            callback.on_step_end(state.step, record)
        state.wall_time_s = time.perf_counter() - started

    def _finish(self) -> dict[str, Any]:
        state, extra = self.state, self.state.extra
        extra["queue"] = self.queue.state_dict()
        summary = {**summarise(state.records, self.config.train.target_accuracy),
                   "virtual_time_s": state.clock,  # the run may end after its last record
                   "version": state.step, "strategy": self.config.strategy.name, "mode": "async",
                   "failed": state.totals["failed"], "timed_out": state.totals["timed_out"],
                   "stop_reason": extra["stop_reason"], "staleness_counts": dict(extra["staleness_counts"]),
                   "participation": list(extra["participation"])}
        set_flat(self.parts.model, state.params)
        if self.run_dir:
            self.run_dir.write_summary(summary)
            self.run_dir.write_model(self.parts.model)
        for callback in self.parts.callbacks:
            callback.on_end(summary)
        return summary

    def _why_nothing_happens(self) -> str:
        if self.tasks:
            return (f"every device is gone: {len(self.tasks)} task(s) will never return and no device is left "
                    "to dispatch (set train.task_timeout_s to stop waiting for lost tasks)")
        return "every device is gone: no device will be online again (fleet.trace or fleet.dropout)"

    # -- events -----------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        del event
        free = self.concurrency - len(self.tasks)
        if free <= 0:
            return
        now, version, fleet = self.queue.now, self.state.step, self.parts.fleet
        busy = {task["client"] for task in self.tasks.values()}
        answers = self.rng.random(len(fleet)) < np.array([d.availability for d in fleet])  # as in a sync round
        candidates = [d.device_id for d, answer in zip(fleet, answers, strict=True)
                      if answer and d.device_id not in busy and self.availability.online(d.device_id, now)]
        chosen = self.parts.selector.select(version + 1, np.array(candidates, dtype=np.int64), free, self.rng) \
            if candidates else np.array([], dtype=np.int64)
        plan = self.strategy.configure_train(self.plan, version + 1)
        phases = [self.parts.time_model.phases(fleet[c], int(self.sizes[c]), plan.epochs,
                                               self.state.params.numel(), self.rng) for c in chosen]
        rate = self.config.fleet.failure_rate
        fails = [rate > 0 and bool(self.rng.random() < rate) for _ in chosen]
        for client, times, failed in zip(chosen, phases, fails, strict=True):
            self._start_task(int(client), times, failed, plan)
        if len(chosen) < free:
            self._wake_later(busy | {int(c) for c in chosen})

    def _start_task(self, client: int, phases: tuple[float, float, float], failed: bool,
                    plan: LocalTrainingPlan) -> None:
        extra, now, version = self.state.extra, self.queue.now, self.state.step
        download, compute, upload = phases
        task_id = str(extra["next_task"])
        extra["next_task"] += 1
        last_version, count = extra["repeats"].get(str(client), [version, -1])
        repeat = count + 1 if last_version == version else 0
        extra["repeats"][str(client)] = [version, repeat]
        task: dict[str, Any] = {"client": client, "base_version": version, "params": self.state.params,
                                "dispatched_s": now, "seed": repeat_seed(self.config.seed, version + 1, client, repeat)}
        total_steps = ServerKnowledge(self.state.params, self.sizes, plan).expected_steps(client)
        split = int(self.strategy.refresh_at * total_steps)
        if 0 < split < total_steps:
            refresh_s = now + download + compute * split / total_steps
            arrive_s = refresh_s + download + compute * (total_steps - split) / total_steps + upload
            task["split"] = split
        else:
            refresh_s, arrive_s = math.nan, now + download + compute + upload
        self.state.totals["bytes_down"] += self.message_bytes
        self.tasks[task_id] = task
        lost = failed or self.availability.online_until(client, now) < arrive_s
        timeout = self.config.train.task_timeout_s
        task["arrives"] = not lost and (timeout is None or arrive_s < now + timeout)
        if lost:
            self.state.totals["failed"] += 1
        elif "split" in task:
            self.queue.push(refresh_s, REFRESH, {"task": task_id, "arrive_s": arrive_s}, SERVER_RANK)
        else:
            self.queue.push(arrive_s, ARRIVE, {"task": task_id}, SERVER_RANK)
        if timeout is not None:
            self.queue.push(now + timeout, TIMEOUT, {"task": task_id}, SERVER_RANK)

    def _wake_later(self, busy: set[int]) -> None:
        """Schedule a dispatch for when a free slot can next be filled."""
        now = self.queue.now
        comebacks = [self.availability.next_online(d.device_id, now) for d in self.parts.fleet
                     if d.device_id not in busy and not self.availability.online(d.device_id, now)]
        later = [t for t in comebacks if t is not None and t > now]
        online_idle = any(d.device_id not in busy and self.availability.online(d.device_id, now)
                          for d in self.parts.fleet)
        if online_idle and not self.tasks:  # they were online but did not answer (availability < 1)
            later.append(now + RETRY_S)
        if later:
            self._schedule_dispatch(min(later))

    def _schedule_dispatch(self, moment: float) -> None:
        if not any(e.time <= moment for e in self.queue.pending(DISPATCH)):
            self.queue.push(moment, DISPATCH, rank=DISPATCH_RANK)

    def _refresh(self, event: Event) -> None:
        """FedASMU's device asks for the current model part-way: train up to here, then blend it in."""
        task = self.tasks[event.data["task"]]
        plan = self.strategy.configure_train(self.plan, task["base_version"] + 1)
        first = self._train(task, task["params"], plan, (0, task["split"]))
        gained = self.state.step - task["base_version"]
        local = task["params"] + first.delta
        task["local"] = self.strategy.refresh(local, self.state.params, gained)
        task["refresh_version"] = self.state.step
        task["first_steps"], task["first_loss"] = first.local_steps, first.metrics.get("train_loss", 0.0)
        self.state.totals["bytes_down"] += self.message_bytes
        self.queue.push(event.data["arrive_s"], ARRIVE, {"task": event.data["task"]}, SERVER_RANK)

    def _timeout(self, event: Event) -> None:
        task_id = event.data["task"]
        if self.tasks.pop(task_id, None) is None:
            return
        self.queue.discard(lambda e: e.data.get("task") == task_id)
        self.state.totals["timed_out"] += 1
        self._schedule_dispatch(self.queue.now)

    def _arrive(self, event: Event) -> None:
        task_id = event.data["task"]
        task = self.tasks.pop(task_id)
        self.queue.discard(lambda e: e.kind == TIMEOUT and e.data.get("task") == task_id)
        if self._untrained(task):
            self._train_ahead([task, *filter(self._untrained, self.tasks.values())])
        update = self._completed_update(task)
        self.state.totals["bytes_up"] += self.message_bytes
        staleness = self.state.step - task["base_version"]
        extra = self.state.extra
        extra["window"].append(staleness)
        extra["staleness_counts"][str(staleness)] = extra["staleness_counts"].get(str(staleness), 0) + 1
        rejected = self._check(update, task, staleness)
        if not rejected:
            rejected = self._aggregate(update, task)
        history = self._validation_history()
        history.observe(self.state.params, [] if rejected else [UpdateSummary.of(update)])
        extra["validation"] = history.state_dict()
        if rejected:
            self.state.totals["updates_rejected"] += 1
            self._record_rejection(rejected)
        self._schedule_dispatch(self.queue.now)

    # -- training and aggregation -----------------------------------------------------------

    @staticmethod
    def _untrained(task: dict[str, Any]) -> bool:
        """A whole task (no refresh) that will arrive and has not been trained yet."""
        return bool(task.get("arrives")) and "split" not in task and "trained" not in task

    def _whole_task(self, task: dict[str, Any]) -> TrainTask:
        plan = self.strategy.configure_train(self.plan, task["base_version"] + 1)
        return TrainTask(task["client"], task["params"], task["base_version"], plan, task["seed"])

    def _train_ahead(self, tasks: list[dict[str, Any]]) -> None:
        """Train ``tasks`` in one backend call; each keeps its update (as plain data) until it arrives."""
        updates = self.parts.backend.run([self._whole_task(task) for task in tasks])
        for task, update in zip(tasks, updates, strict=True):
            task["trained"] = {"delta": update.delta, "num_samples": update.num_samples,
                               "local_steps": update.local_steps, "metrics": dict(update.metrics)}

    def _hooked(self, train_task: TrainTask, update: ClientUpdate) -> ClientUpdate:
        for hook in self.parts.client_hooks:
            update = hook(train_task, update)
        return update

    def _train(self, task: dict[str, Any], params: torch.Tensor, plan: LocalTrainingPlan,
               steps: tuple[int, int] | None) -> ClientUpdate:
        train_task = TrainTask(task["client"], params, task["base_version"], plan, task["seed"], steps)
        return self._hooked(train_task, self.parts.backend.run([train_task])[0])

    def _completed_update(self, task: dict[str, Any]) -> ClientUpdate:
        if "trained" in task:
            trained = task["trained"]
            update = ClientUpdate(task["client"], trained["delta"], trained["num_samples"], trained["local_steps"],
                                  task["base_version"], trained["metrics"])
            return self._hooked(self._whole_task(task), update)
        plan = self.strategy.configure_train(self.plan, task["base_version"] + 1)
        if "local" not in task:
            return self._train(task, task["params"], plan, None)
        second = self._train(task, task["local"], plan, (task["split"], 1 << 62))
        steps = task["first_steps"] + second.local_steps
        loss = (task["first_loss"] * task["first_steps"]
                + second.metrics.get("train_loss", 0.0) * second.local_steps) / max(steps, 1)
        return ClientUpdate(task["client"], task["local"] + second.delta - task["params"], second.num_samples,
                            steps, task["base_version"],
                            {"train_loss": loss, "refresh_version": float(task["refresh_version"])})

    def _check(self, update: ClientUpdate, task: dict[str, Any], staleness: int) -> Rejection | None:
        limit = self.config.train.max_staleness
        if limit is not None and staleness > limit:
            return Rejection(update.client_id, f"staleness {staleness} exceeds train.max_staleness={limit}")
        plan = self.strategy.configure_train(self.plan, task["base_version"] + 1)
        history = self._validation_history()
        server = ServerKnowledge(task["params"], self.sizes, plan, history.reference_norm, history.recent_norms)
        _, rejected = validate_updates([update], server, self.config.validation.max_norm_ratio)
        return rejected[0] if rejected else None

    def _validation_history(self) -> ValidationHistory:
        """What validation remembers of the last ``reference_rounds`` arrivals."""
        return ValidationHistory.of_run(self.config.validation.reference_rounds, self.state.extra, self.state.params)

    def _aggregate(self, update: ClientUpdate, task: dict[str, Any]) -> Rejection | None:
        state, extra = self.state, self.state.extra
        proposed = self.strategy.receive(state.params, Arrival(update, task["params"], state.step))
        if proposed is not None and not bool(torch.isfinite(proposed).all()):
            log.error("version %d: aggregate is not finite; keeping the previous global model", state.step)
            return Rejection(update.client_id, "aggregate not finite")
        state.totals["updates_accepted"] += 1
        extra["participation"][update.client_id] += 1
        if "train_loss" in update.metrics:
            extra["losses"].append(float(update.metrics["train_loss"]))
        if proposed is not None:
            state.params = proposed
            state.step += 1
        return None

    def _record_rejection(self, rejection: Rejection) -> None:
        log.warning("version %d: rejected update of client %d: %s", self.state.step, rejection.client_id,
                    rejection.reason)
        if self.run_dir:  # step = the version being built, so a resume at version v redoes those after v
            self.run_dir.append_rejections(self.state.step + 1, [rejection])

    def _record(self) -> dict[str, Any]:
        state, extra = self.state, self.state.extra
        set_flat(self.parts.model, state.params)
        accuracy, loss = evaluate(self.parts.model, self.parts.data.test, self.config.train.eval_batch_size,
                                  self.config.backend.eval_threads)
        losses = extra["losses"]
        record = {
            "version": state.step,
            "virtual_time_s": state.clock,
            "wall_time_s": state.wall_time_s,
            "test_accuracy": accuracy,
            "test_loss": loss,
            "train_loss": float(np.mean(losses)) if losses else None,
            **staleness_stats(extra["window"]),
            **state.totals,
        }
        extra["window"], extra["losses"] = [], []
        state.records.append(record)
        if self.run_dir:
            self.run_dir.append_metrics(record)
        return record
