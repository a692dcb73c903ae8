"""The synchronous round loop: select → train → validate → aggregate → evaluate → checkpoint."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from fedfleet.config import RunConfig
from fedfleet.errors import CheckpointError, FedfleetError
from fedfleet.fl.backend import Backend, ClientHook, LocalChecks, SummingBackend
from fedfleet.fl.callbacks import Callback
from fedfleet.fl.checkpoint import RunState, run_fingerprint, save_checkpoint
from fedfleet.fl.client import evaluate
from fedfleet.fl.faults import Availability
from fedfleet.fl.federated_data import FederatedData
from fedfleet.fl.fleet import BYTES_PER_PARAM, DeviceProfile, TimeModel, VirtualClock
from fedfleet.fl.history import summarise
from fedfleet.fl.messages import LocalTrainingPlan, TrainTask
from fedfleet.fl.params import get_flat, num_params, set_flat
from fedfleet.fl.run_dir import RunDirectory
from fedfleet.fl.selection import Selector
from fedfleet.fl.server_hooks import ModelReplacement, ServerHook
from fedfleet.fl.strategies import FederationInfo, Strategy
from fedfleet.fl.validation import (
    Rejection,
    ServerKnowledge,
    UpdateSummary,
    ValidationHistory,
    judge_summaries,
    summarise_update,
)
from fedfleet.seeding import EngineStream, stream

log = logging.getLogger(__name__)


def task_seed(seed: int, step: int, client_id: int) -> int:
    """A client's batch-order seed for one step, independent of execution order."""
    return int(np.random.SeedSequence([seed, step, client_id]).generate_state(1)[0])


def plan_from_config(config: RunConfig) -> LocalTrainingPlan:
    train = config.train
    return LocalTrainingPlan(train.local_epochs, train.batch_size, train.lr, train.momentum, train.weight_decay)


def initial_state(config: RunConfig, params: torch.Tensor, counters: Sequence[str],
                  extra: dict[str, Any]) -> RunState:
    """A run's state before its first step: zero totals (the common ones and ``counters``), the round stream."""
    totals = dict.fromkeys(("updates_accepted", "updates_rejected", *counters, "bytes_up", "bytes_down"), 0)
    return RunState(step=0, params=params, strategy_state={},
                    rng_state=dict(stream(config.seed, EngineStream.ROUNDS).bit_generator.state),
                    clock=0.0, wall_time_s=0.0, records=[], totals=totals, extra=extra,
                    fingerprint=run_fingerprint(config, params))


@dataclass
class RunnerParts:
    """The pluggable pieces a runner is assembled from."""

    model: nn.Module
    data: FederatedData
    strategy: Strategy
    selector: Selector
    backend: Backend
    fleet: list[DeviceProfile]
    time_model: TimeModel
    callbacks: Sequence[Callback] = ()
    client_hooks: Sequence[ClientHook] = ()
    server_hooks: Sequence[ServerHook] = ()


@dataclass
class RoundOutcome:
    """What one round did, for the metrics record."""

    accepted: list[UpdateSummary]
    rejected: list[Rejection]
    dropped: int
    duration_s: float
    bytes_up: int
    bytes_down: int
    train_loss: float | None = field(default=None)


def train_and_aggregate(config: RunConfig, parts: RunnerParts, state: RunState, tasks: Sequence[TrainTask],
                        plan: LocalTrainingPlan, round_index: int,
                        ) -> tuple[int, list[UpdateSummary], list[Rejection]]:
    """Train ``tasks`` through the backend and hooks, validate, aggregate into ``state.params``.

    Updates ``state.params`` (unless the aggregate is not finite), the validation history and
    the participation counts in ``state.extra``. Returns (updates received, accepted, rejected).
    With ``backend.sum_updates`` on a :class:`SummingBackend`, a strategy that is a sample-weighted
    mean and no client hooks, the workers send summaries and one weighted sum each instead of the
    updates; validation and the aggregate are the same, up to the order of the float additions.
    """
    params, sizes = state.params, parts.data.num_samples()
    history = ValidationHistory.of_run(config.validation.reference_rounds, state.extra, params)
    server = ServerKnowledge(params, sizes, plan, history.reference_norm, history.recent_norms,
                             parts.strategy.check_update)
    ratio = config.validation.max_norm_ratio
    server_lr = parts.strategy.sample_mean_lr()
    backend = parts.backend
    if config.backend.sum_updates and server_lr is not None and not parts.client_hooks \
            and isinstance(backend, SummingBackend):
        summaries = backend.train_held(tasks, LocalChecks(sizes, history.reference_norm, ratio))
        positions, rejected = judge_summaries(summaries, server, ratio)
        accepted = [summaries[i] for i in positions]
        total = sum(summary.num_samples for summary in accepted)

        def aggregate() -> torch.Tensor:
            direction = backend.sum_held({i: summaries[i].num_samples / total for i in positions})
            return params + server_lr * direction
    else:
        updates = backend.run(tasks)
        for hook in parts.client_hooks:
            updates = [hook(task, update) for task, update in zip(tasks, updates, strict=True)]
        summaries = [summarise_update(update, server, ratio) for update in updates]
        positions, rejected = judge_summaries(summaries, server, ratio)
        accepted = [summaries[i] for i in positions]

        def aggregate() -> torch.Tensor:
            return parts.strategy.aggregate(params, [updates[i] for i in positions])
    if accepted:
        aggregated = aggregate()
        if bool(torch.isfinite(aggregated).all()):
            state.params = aggregated
        else:
            log.error("round %d: aggregate is not finite; keeping the previous global model", round_index)
            rejected += [Rejection(u.client_id, "aggregate not finite") for u in accepted]
            accepted = []
    history.observe(state.params, accepted)
    state.extra["validation"] = history.state_dict()
    participation = state.extra.setdefault("participation", [0] * len(sizes))
    for summary in accepted:
        participation[summary.client_id] += 1
    return len(summaries), accepted, rejected


class SyncRunner:
    """Runs ``config.train.rounds`` synchronous rounds.

    Parameters
    ----------
    config : RunConfig
    parts : RunnerParts
    run_dir : RunDirectory, optional
        Where metrics, checkpoints, the model and the summary go; None keeps everything in memory.
    availability : Availability, optional
        When each device is online (fleet.dropout or fleet.trace); default always.
    """

    def __init__(self, config: RunConfig, parts: RunnerParts, run_dir: RunDirectory | None = None,
                 availability: Availability | None = None) -> None:
        self.config = config
        self.parts = parts
        self.run_dir = run_dir
        self.availability = availability or Availability()
        self.stop_reason: str | None = None
        self.plan = plan_from_config(config)
        parts.strategy.setup(FederationInfo(parts.data.num_samples(), parts.data.label_histograms()))
        self.state = initial_state(config, get_flat(parts.model), ("dropped",), {})

    def resume_from(self, state: RunState) -> None:
        """Continue from a checkpointed state instead of round 0 (with the architecture its server hooks reached)."""
        self.state = state
        self.parts.strategy.load_state_dict(state.strategy_state)
        hook_states = state.extra.get("server_hooks", [])
        if len(hook_states) != len(self.parts.server_hooks):
            raise CheckpointError(f"the checkpoint holds the state of {len(hook_states)} server hooks, this run has "
                                  f"{len(self.parts.server_hooks)}; it was written by another run: start it again")
        model = self.parts.model
        for hook, hook_state in zip(self.parts.server_hooks, hook_states, strict=True):
            try:
                model = hook.load_state_dict(hook_state, model)
            except (KeyError, TypeError, ValueError, IndexError, FedfleetError) as exc:
                raise CheckpointError(f"the checkpoint holds a server-hook state this run cannot load "
                                      f"({type(exc).__name__}: {str(exc)[:200]}); it is damaged: start the run "
                                      "again") from None
        expected = num_params(model)
        if state.params.numel() != expected:
            raise CheckpointError(f"the checkpoint holds {state.params.numel()} parameters, its model architecture "
                                  f"has {expected}; it is damaged: start the run again")
        if model is not self.parts.model:
            self.parts.model = model
            self.parts.backend.set_model(model)

    def run(self) -> dict[str, Any]:
        """Run the remaining rounds; return the summary. The backend's workers stop when it returns or raises."""
        try:
            return self._run()
        finally:
            self.parts.backend.close()

    def _run(self) -> dict[str, Any]:
        config, parts, state = self.config, self.parts, self.state
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng_state
        clock = VirtualClock(state.clock)
        started = time.perf_counter() - state.wall_time_s
        rounds = config.train.rounds
        if self.run_dir:
            self.run_dir.write_metrics(state.records)
            self.run_dir.drop_rejections_after(state.step)
        for callback in parts.callbacks:
            callback.on_start(rounds, state.step)
        for round_index in range(state.step + 1, rounds + 1):
            outcome = self._round(round_index, rng)
            if self.stop_reason is not None:
                log.warning("stopped before round %d: %s", round_index, self.stop_reason)
                break
            clock.advance_to(clock.now + outcome.duration_s)
            self._apply_server_hooks(round_index)
            totals = state.totals
            totals["updates_accepted"] += len(outcome.accepted)
            totals["updates_rejected"] += len(outcome.rejected)
            totals["dropped"] += outcome.dropped
            totals["bytes_up"] += outcome.bytes_up
            totals["bytes_down"] += outcome.bytes_down
            state.step, state.clock = round_index, clock.now
            state.wall_time_s = time.perf_counter() - started
            record = None
            if round_index % config.train.eval_every == 0 or round_index == rounds:
                record = self._evaluate(round_index, clock.now, state.wall_time_s, outcome)
                state.records.append(record)
                if self.run_dir:
                    self.run_dir.append_metrics(record)
            if self._checkpoint_due(round_index):
                state.strategy_state = parts.strategy.state_dict()
                if parts.server_hooks:
                    state.extra["server_hooks"] = [hook.state_dict() for hook in parts.server_hooks]
                state.rng_state = dict(rng.bit_generator.state)
                assert self.run_dir is not None
                save_checkpoint(self.run_dir.checkpoint_dir, state)
            for callback in parts.callbacks:
                callback.on_step_end(round_index, record)
        summary = {**summarise(state.records, config.train.target_accuracy),
                   "rounds": state.step, "strategy": config.strategy.name,
                   "dropped": state.totals["dropped"], "stop_reason": self.stop_reason,
                   "participation": list(state.extra.get("participation", [])), **self._hook_records(),
                   **{key: value for hook in parts.server_hooks for key, value in hook.summary().items()}}
        set_flat(parts.model, state.params)
        if self.run_dir:
            self.run_dir.write_summary(summary)
            self.run_dir.write_model(parts.model)
        for callback in parts.callbacks:
            callback.on_end(summary)
        return summary

    def _apply_server_hooks(self, round_index: int) -> None:
        """Let each server hook see the round's global model and replace it."""
        for hook in self.parts.server_hooks:
            set_flat(self.parts.model, self.state.params)
            replacement = hook.on_round_end(round_index, self.parts.model)
            if replacement is not None:
                self._replace_model(replacement)

    def _replace_model(self, replacement: ModelReplacement) -> None:
        """Make ``replacement`` the global model; a new architecture's updates are not judged by the old norms."""
        if replacement.model is not self.parts.model:
            self.parts.model = replacement.model
            self.parts.backend.set_model(replacement.model)
            self.state.extra.pop("validation", None)
        self.state.params = get_flat(replacement.model)
        self.state.extra["compute_scale"] = replacement.compute_scale

    def _hook_records(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for hook in self.parts.server_hooks:
            fields.update(hook.record())
        return fields

    def _checkpoint_due(self, round_index: int) -> bool:
        every = self.config.checkpoint_every
        return self.run_dir is not None and every > 0 and round_index % every == 0

    def _round(self, round_index: int, rng: np.random.Generator) -> RoundOutcome:
        config, parts, params = self.config, self.parts, self.state.params
        now, present = self.state.clock, self.availability
        online = np.array([d.device_id for d in parts.fleet
                           if rng.random() < d.availability and present.online(d.device_id, now)])
        if len(online) == 0:
            log.warning("round %d: no device online", round_index)
            comebacks = [t for d in parts.fleet if (t := present.next_online(d.device_id, now)) is not None]
            if not comebacks:
                self.stop_reason = "every device is gone: no device will be online again (fleet.trace or fleet.dropout)"
            waited = config.train.deadline_s or 0.0  # with a deadline, the server waits it out
            return RoundOutcome([], [], 0, max(waited, min(comebacks, default=now) - now), 0, 0)
        chosen = parts.selector.select(round_index, online, config.train.clients_per_round, rng)
        plan = parts.strategy.configure_train(self.plan, round_index)
        sizes = parts.data.num_samples()
        scale = float(self.state.extra.get("compute_scale", 1.0))
        durations = np.array([
            parts.time_model.update_time(parts.fleet[c], int(sizes[c]), plan.epochs, params.numel(), rng, scale)
            for c in chosen
        ])
        lost = np.array([present.online_until(int(c), now) < now + t for c, t in zip(chosen, durations, strict=True)])
        if config.fleet.failure_rate > 0:
            lost |= rng.random(len(chosen)) < config.fleet.failure_rate
        durations = np.where(lost, np.inf, durations)  # a lost task never returns
        limits = [t for t in (config.train.deadline_s, config.train.task_timeout_s) if t is not None]
        deadline = min(limits) if limits else None
        finishing = chosen if deadline is None else chosen[durations <= deadline]
        dropped = len(chosen) - len(finishing)
        duration = float(durations.max()) if deadline is None else float(deadline if dropped else durations.max())
        tasks = [TrainTask(int(c), params, round_index - 1, plan, task_seed(config.seed, round_index, int(c)))
                 for c in finishing]
        received, accepted, rejected = train_and_aggregate(config, parts, self.state, tasks, plan, round_index)
        self._record_rejections(round_index, rejected)
        message_bytes = params.numel() * BYTES_PER_PARAM
        losses = [u.metrics["train_loss"] for u in accepted if "train_loss" in u.metrics]
        return RoundOutcome(
            accepted, rejected, dropped, duration,
            bytes_up=received * message_bytes,
            bytes_down=len(chosen) * message_bytes,
            train_loss=float(np.mean(losses)) if losses else None,
        )

    def _record_rejections(self, round_index: int, rejected: list[Rejection]) -> None:
        for rejection in rejected:
            log.warning("round %d: rejected update of client %d: %s", round_index, rejection.client_id,
                        rejection.reason)
        if self.run_dir and rejected:
            self.run_dir.append_rejections(round_index, rejected)

    def _evaluate(self, round_index: int, now: float, wall: float, outcome: RoundOutcome) -> dict[str, Any]:
        set_flat(self.parts.model, self.state.params)
        accuracy, loss = evaluate(self.parts.model, self.parts.data.test, self.config.train.eval_batch_size,
                                  self.config.backend.eval_threads)
        return {
            "round": round_index,
            "virtual_time_s": now,
            "wall_time_s": wall,
            "test_accuracy": accuracy,
            "test_loss": loss,
            "train_loss": outcome.train_loss,
            **self.state.totals,
            **self._hook_records(),
        }
