"""Several FL jobs training at once over one shared fleet, on the virtual clock's event queue.

A job's round is dispatched when enough of the fleet's devices are idle: the scheduling
policy picks its devices among the idle, online devices that answered, the
:class:`~fedfleet.fl.multijob.pool.DevicePool` hands them to the job (raising on a
collision), and each device returns at the virtual moment its update would finish under the
time model for that job's model and data. When the job's last device is back (or its
deadline passes) the round's tasks train through the job's backend and are validated and
aggregated exactly as in a synchronous run (:func:`~fedfleet.fl.sync_runner.train_and_aggregate`).
Every piece of state is plain data or tensors, so a resumed run continues event for event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fedfleet.config import RunConfig
from fedfleet.fl.callbacks import Callback
from fedfleet.fl.checkpoint import RunState, run_fingerprint, save_checkpoint
from fedfleet.fl.client import evaluate
from fedfleet.fl.events import Event, EventQueue, Halt
from fedfleet.fl.faults import Availability
from fedfleet.fl.fleet import BYTES_PER_PARAM, DeviceProfile, TimeModel
from fedfleet.fl.history import summarise
from fedfleet.fl.messages import LocalTrainingPlan, TrainTask
from fedfleet.fl.multijob.config import MultiJobConfig
from fedfleet.fl.multijob.outputs import MultiJobDirectory
from fedfleet.fl.multijob.pool import FREE, DevicePool
from fedfleet.fl.params import set_flat
from fedfleet.fl.run_dir import RunDirectory
from fedfleet.fl.scheduling import PlanningProblem, SchedulingPolicy, fairness_variance, jain_index
from fedfleet.fl.sync_runner import RunnerParts, task_seed, train_and_aggregate
from fedfleet.seeding import EngineStream, stream

log = logging.getLogger(__name__)

DISPATCH, RETURN, ROUND_END = "job_dispatch", "device_return", "round_end"
SERVER_RANK, DISPATCH_RANK = 0, 1  # returns and round ends at a moment come before new dispatches
RETRY_S = 10.0  # virtual seconds before asking again when too few devices answered and nothing is training


@dataclass
class Job:
    """One job of the run: its run config, engine parts, state and expected device times.

    Attributes
    ----------
    index : int
    name : str
    config : RunConfig
        The job as a run (see :func:`~fedfleet.fl.multijob.config.job_run_config`).
    parts : RunnerParts
    state : RunState
        ``step`` = completed rounds, ``clock`` = the end of the last one.
    plan : LocalTrainingPlan
    expected_s : numpy.ndarray
        (num_devices,) expected seconds of one update of this job on each device.
    run_dir : RunDirectory or None
        The job's folder.
    """

    index: int
    name: str
    config: RunConfig
    parts: RunnerParts
    state: RunState
    plan: LocalTrainingPlan
    expected_s: np.ndarray
    run_dir: RunDirectory | None


class MultiJobRunner:
    """Runs every job to its ``train.rounds`` (or target, or ``max_virtual_time_s``) over one fleet.

    Parameters
    ----------
    config : MultiJobConfig
    jobs : list of Job
    fleet : list of DeviceProfile
    time_model : TimeModel
    policy : SchedulingPolicy
    out : MultiJobDirectory, optional
    availability : Availability, optional
    callbacks : sequence of Callback
        Steps are completed rounds over all jobs; each record is the evaluated job's.
    """

    def __init__(self, config: MultiJobConfig, jobs: list[Job], fleet: list[DeviceProfile], time_model: TimeModel,
                 policy: SchedulingPolicy, out: MultiJobDirectory | None = None,
                 availability: Availability | None = None, callbacks: Sequence[Callback] = ()) -> None:
        self.config, self.jobs, self.fleet, self.time_model = config, jobs, fleet, time_model
        self.policy, self.out, self.callbacks = policy, out, callbacks
        self.availability = availability or Availability()
        queue = EventQueue()
        queue.push(0.0, DISPATCH, rank=DISPATCH_RANK)
        devices, count = config.num_devices, len(jobs)
        extra: dict[str, Any] = {
            "queue": queue.state_dict(),
            "holders": [FREE] * devices,  # the job holding each device
            "served": [[0] * devices for _ in jobs],  # rounds each device was scheduled to each job
            "busy_s": [0.0] * count,  # device-seconds each job held devices
            "in_flight": [False] * count,
            "done": [None] * count,  # why each job stopped
            "schedule": [],  # one record per dispatched round (schedule.jsonl)
            "stop_reason": None,
        }
        empty = torch.zeros(0)
        self.state = RunState(step=0, params=empty, strategy_state={},
                              rng_state=dict(stream(config.seed, EngineStream.ROUNDS).bit_generator.state),
                              clock=0.0, wall_time_s=0.0, records=[], totals={}, extra=extra,
                              fingerprint=run_fingerprint(config, empty))
        self.queue = queue
        self.pool = DevicePool(extra["holders"])
        self.rng = np.random.default_rng()
        self.events: list[tuple[float, str, dict[str, Any]]] = []  # handled events, in order (this session)
        self.last_record: dict[str, Any] | None = None  # the record of the round just completed, if evaluated

    @property
    def extra(self) -> dict[str, Any]:
        return self.state.extra

    def resume_from(self, state: RunState) -> None:
        """Continue from a checkpoint: the run's state, every job's state and the policy's."""
        job_states = state.extra.pop("jobs")
        for job, saved in zip(self.jobs, job_states, strict=True):
            job.state = RunState(**{**saved, "fingerprint": job.state.fingerprint})
        for job, strategy_state in zip(self.jobs, state.strategy_state["jobs"], strict=True):
            job.parts.strategy.load_state_dict(strategy_state)
        self.policy.load_state_dict(state.strategy_state["policy"])
        self.state = state
        self.pool = DevicePool(state.extra["holders"])

    def run(self) -> dict[str, Any]:
        """Handle events until every job is done or nothing can happen any more; return the summary.

        The jobs' backend workers stop when it returns or raises.
        """
        try:
            return self._run()
        finally:
            for job in self.jobs:
                job.parts.backend.close()

    def _run(self) -> dict[str, Any]:
        state, extra = self.state, self.extra
        self.queue = EventQueue.from_state(extra["queue"])
        self.rng.bit_generator.state = state.rng_state
        started = time.perf_counter() - state.wall_time_s
        handlers = {DISPATCH: self._dispatch, RETURN: self._return, ROUND_END: self._round_end}
        for job in self.jobs:
            if job.run_dir:
                job.run_dir.write_metrics(job.state.records)
                job.run_dir.drop_rejections_after(job.state.step)
        total = sum(job.config.train.rounds for job in self.jobs)
        for callback in self.callbacks:
            callback.on_start(total, state.step)
        limit, rounds = self.config.max_virtual_time_s, state.step

        def after(event: Event) -> None:
            nonlocal rounds
            self.events.append((event.time, event.kind, dict(event.data)))
            state.clock = self.queue.now
            state.wall_time_s = time.perf_counter() - started
            if state.step > rounds:
                self._after_round()
            rounds = state.step

        halt = self.queue.run(handlers, lambda: extra["stop_reason"] is None and not all(extra["done"]), after, limit)
        if halt is Halt.EMPTY:
            extra["stop_reason"] = "every device is gone: no device will be online again (fleet.trace or fleet.dropout)"
        elif halt is Halt.LIMIT:
            assert limit is not None  # only a limit halts there
            extra["stop_reason"] = f"max_virtual_time_s={limit:g} reached"
            state.clock = limit
        if extra["stop_reason"] is not None:
            log.warning("multi-job run stopped at %.0f s: %s", state.clock, extra["stop_reason"])
        return self._finish()

    # -- events -----------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        del event
        extra, now = self.extra, self.queue.now
        answered = self.rng.random(len(self.fleet)) < np.array([d.availability for d in self.fleet])
        waiting = [job for job in self.jobs if not extra["in_flight"][job.index] and extra["done"][job.index] is None]
        started = False
        for job in sorted(waiting, key=lambda j: (j.state.step, j.index)):  # the job furthest behind first
            candidates = np.array([d for d in self.pool.idle()
                                   if answered[d] and self.availability.online(d, now)], dtype=np.int64)
            k = job.config.train.clients_per_round
            if len(candidates) < k:
                continue
            problem = PlanningProblem(job.index, job.state.step + 1, candidates, k, job.expected_s,
                                      np.array(extra["served"][job.index]), self.config.scheduler.alpha,
                                      self.config.scheduler.beta)
            clock = time.perf_counter()
            chosen = self.policy.plan(problem, self.rng)
            planning_s = time.perf_counter() - clock
            self.pool.claim(chosen, job.index)
            self._start_round(job, problem, np.asarray(chosen, dtype=np.int64), planning_s)
            started = True
        if waiting and not started and not any(extra["in_flight"]):
            self._wake_later()

    def _wake_later(self) -> None:
        """Nothing trains and too few devices answered: ask again when a device can next be online."""
        now = self.queue.now
        comebacks = [t for d in self.fleet if (t := self.availability.next_online(d.device_id, now)) is not None]
        if comebacks:
            self.queue.push(max(min(comebacks), now + RETRY_S), DISPATCH, rank=DISPATCH_RANK)

    def _start_round(self, job: Job, problem: PlanningProblem, chosen: np.ndarray, planning_s: float) -> None:
        extra, now, round_index = self.extra, self.queue.now, job.state.step + 1
        train = job.config.train
        epochs = job.parts.strategy.configure_train(job.plan, round_index).epochs
        sizes, num_params = job.parts.data.num_samples(), job.state.params.numel()
        durations = np.array([self.time_model.update_time(self.fleet[c], int(sizes[c]), epochs, num_params, self.rng)
                              for c in chosen])
        lost = np.array([self.availability.online_until(int(c), now) < now + t
                         for c, t in zip(chosen, durations, strict=True)], dtype=bool)
        if self.config.fleet.failure_rate > 0:
            lost |= self.rng.random(len(chosen)) < self.config.fleet.failure_rate
        limits = [t for t in (train.deadline_s, train.task_timeout_s) if t is not None]
        deadline = min(limits) if limits else None
        in_time = ~lost & (durations <= (deadline if deadline is not None else np.inf))
        if in_time.all():
            end = now + float(durations.max())
        else:  # only with a deadline: the config refuses failing or vanishing devices without one
            assert deadline is not None
            end = now + deadline
        returns = np.where(in_time, now + durations, end)  # a late or lost device is released at the round's end
        for device, moment in zip(chosen, returns, strict=True):
            self.queue.push(float(moment), RETURN, {"device": int(device), "job": job.index}, SERVER_RANK)
            extra["served"][job.index][int(device)] += 1
        extra["busy_s"][job.index] += float((returns - now).sum())
        self.queue.push(end, ROUND_END, {"job": job.index, "round": round_index, "chosen": chosen.tolist(),
                                         "finishing": chosen[in_time].tolist()}, SERVER_RANK)
        extra["in_flight"][job.index] = True
        slowest = float(problem.times[chosen].max())
        extra["schedule"].append({
            "job": job.name, "round": round_index, "dispatched_s": now, "end_s": end,
            "devices": chosen.tolist(), "returns_s": returns.tolist(), "cost": problem.cost(chosen),
            "time_term": problem.alpha * slowest,
            "fairness_term": problem.beta * fairness_variance(problem.counts, round_index, chosen),
            "planning_s": planning_s})

    def _return(self, event: Event) -> None:
        self.pool.release(int(event.data["device"]), int(event.data["job"]))
        self._ask_for_devices()

    def _ask_for_devices(self) -> None:
        now = self.queue.now
        if not any(e.time <= now for e in self.queue.pending(DISPATCH)):
            self.queue.push(now, DISPATCH, rank=DISPATCH_RANK)

    def _round_end(self, event: Event) -> None:
        job = self.jobs[int(event.data["job"])]
        round_index, state, now = int(event.data["round"]), job.state, self.queue.now
        plan = job.parts.strategy.configure_train(job.plan, round_index)
        tasks = [TrainTask(int(c), state.params, round_index - 1, plan, task_seed(job.config.seed, round_index, int(c)))
                 for c in event.data["finishing"]]
        received, accepted, rejected = train_and_aggregate(job.config, job.parts, state, tasks, plan, round_index)
        for rejection in rejected:
            log.warning("job %s round %d: rejected update of client %d: %s", job.name, round_index,
                        rejection.client_id, rejection.reason)
        if job.run_dir and rejected:
            job.run_dir.append_rejections(round_index, rejected)
        message_bytes = state.params.numel() * BYTES_PER_PARAM
        totals = state.totals
        totals["updates_accepted"] += len(accepted)
        totals["updates_rejected"] += len(rejected)
        totals["dropped"] += len(event.data["chosen"]) - len(tasks)
        totals["bytes_up"] += received * message_bytes
        totals["bytes_down"] += len(event.data["chosen"]) * message_bytes
        state.step, state.clock, state.wall_time_s = round_index, now, self.state.wall_time_s
        losses = [u.metrics["train_loss"] for u in accepted if "train_loss" in u.metrics]
        rounds = job.config.train.rounds
        self.last_record = None
        if round_index % job.config.train.eval_every == 0 or round_index == rounds:
            self.last_record = self._evaluate(job, float(np.mean(losses)) if losses else None)
        target = job.config.train.target_accuracy
        reached = self.last_record is not None and target is not None and self.last_record["test_accuracy"] >= target
        if round_index == rounds:
            self.extra["done"][job.index] = f"train.rounds={rounds} done"
        elif self.config.stop_at_target and reached:
            self.extra["done"][job.index] = f"train.target_accuracy={target:g} reached"
        self.extra["in_flight"][job.index] = False
        self.state.step += 1
        self._ask_for_devices()

    def _evaluate(self, job: Job, train_loss: float | None) -> dict[str, Any]:
        state = job.state
        set_flat(job.parts.model, state.params)
        accuracy, loss = evaluate(job.parts.model, job.parts.data.test, job.config.train.eval_batch_size,
                                  job.config.backend.eval_threads)
        served = np.array(self.extra["served"][job.index])
        record = {"round": state.step, "virtual_time_s": state.clock, "wall_time_s": state.wall_time_s,
                  "test_accuracy": accuracy, "test_loss": loss, "train_loss": train_loss,
                  "fairness_variance": fairness_variance(served, state.step, np.array([], dtype=np.int64)),
                  "jain_index": jain_index(served), **state.totals}
        state.records.append(record)
        if job.run_dir:
            job.run_dir.append_metrics(record)
        return record

    def _after_round(self) -> None:
        state, every = self.state, self.config.checkpoint_every
        if self.out is not None and every > 0 and state.step % every == 0:
            self._save_checkpoint()
        for callback in self.callbacks:
            callback.on_step_end(state.step, self.last_record)

    def _save_checkpoint(self) -> None:
        assert self.out is not None
        state = self.state
        state.extra["queue"] = self.queue.state_dict()
        state.rng_state = dict(self.rng.bit_generator.state)
        state.strategy_state = {"jobs": [job.parts.strategy.state_dict() for job in self.jobs],
                                "policy": self.policy.state_dict()}
        keep = ("step", "params", "strategy_state", "rng_state", "clock", "wall_time_s", "records", "totals", "extra")
        snapshot = RunState(**{**{f: getattr(state, f) for f in keep}, "fingerprint": state.fingerprint,
                               "extra": {**state.extra, "jobs": [
                                   {f: getattr(job.state, f) for f in keep} for job in self.jobs]}})
        save_checkpoint(self.out.checkpoint_dir, snapshot)

    # -- the end ----------------------------------------------------------------------------

    def _finish(self) -> dict[str, Any]:
        state, extra = self.state, self.extra
        extra["queue"] = self.queue.state_dict()
        summaries = {job.name: self._finish_job(job) for job in self.jobs}
        summary = combined_summary(self.config, self.jobs, summaries, extra, state.clock, state.wall_time_s)
        if self.out is not None:
            self.out.write_schedule(extra["schedule"])
            self.out.write_summary(summary)
            self.out.save_policy(self.policy)
        for callback in self.callbacks:
            callback.on_end(summary)
        return summary

    def _finish_job(self, job: Job) -> dict[str, Any]:
        state = job.state
        served = np.array(self.extra["served"][job.index])
        summary = {**summarise(state.records, job.config.train.target_accuracy),
                   "rounds": state.step, "strategy": job.config.strategy.name, "dropped": state.totals["dropped"],
                   "stop_reason": self.extra["done"][job.index] or self.extra["stop_reason"],
                   "fairness_variance": fairness_variance(served, max(state.step, 1), np.array([], dtype=np.int64)),
                   "jain_index": jain_index(served), "served": served.tolist(),
                   "participation": list(state.extra.get("participation", []))}
        set_flat(job.parts.model, state.params)
        if job.run_dir:
            job.run_dir.write_summary(summary)
            job.run_dir.write_model(job.parts.model)
        return summary


def combined_summary(config: MultiJobConfig, jobs: Sequence[Job], summaries: dict[str, dict[str, Any]],
                     extra: dict[str, Any], clock: float, wall_time_s: float) -> dict[str, Any]:
    """The run's summary.json: per-job results, time until all targets, fairness, occupancy, planning time."""
    targets = [s["time_to_target_s"] for s in summaries.values()]
    has_targets = all(job.config.train.target_accuracy is not None for job in jobs)
    served_total = np.sum(np.array(extra["served"]), axis=0)
    planning = [r["planning_s"] for r in extra["schedule"]]
    keys = ("final_accuracy", "best_accuracy", "time_to_target_s", "rounds", "virtual_time_s",
            "fairness_variance", "jain_index", "updates_accepted", "dropped", "stop_reason")
    return {
        "scheduler": config.scheduler.name,
        "jobs": {name: {key: s.get(key) for key in keys} for name, s in summaries.items()},
        "time_to_all_targets_s": max(targets) if has_targets and None not in targets else None,
        "virtual_time_s": clock,
        "wall_time_s": wall_time_s,
        "mean_final_accuracy": float(np.mean([s["final_accuracy"] or 0.0 for s in summaries.values()])),
        "fairness_variance": float(np.mean([s["fairness_variance"] for s in summaries.values()])),
        "jain_index": jain_index(served_total),
        "device_busy_share": min(1.0, sum(extra["busy_s"]) / (config.num_devices * clock)) if clock > 0 else 0.0,
        "planning_s": float(np.sum(planning)) if planning else 0.0,
        "planning_s_per_round": float(np.mean(planning)) if planning else 0.0,
        "rounds": sum(s["rounds"] for s in summaries.values()),
        "stop_reason": extra["stop_reason"],
        "participation": served_total.tolist(),
    }
