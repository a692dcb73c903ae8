"""Reject bad client updates before they reach aggregation."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fedfleet.fl.messages import ClientUpdate, LocalTrainingPlan


@dataclass(frozen=True)
class Rejection:
    """An update that was not aggregated, and why."""

    client_id: int
    reason: str


@dataclass(frozen=True)
class ServerKnowledge:
    """What the server can check a round's updates against.

    Attributes
    ----------
    global_params : torch.Tensor
        (num_params,) the model the round's clients started from.
    num_samples : numpy.ndarray
        (num_clients,) the clients' registered data set sizes.
    plan : LocalTrainingPlan
        The round's local-training plan, which fixes each client's number of SGD steps.
    reference_norm : float, optional
        The model norm the norm bound is relative to (see :class:`ValidationHistory`); None uses
        the norm of ``global_params``, which a poisoned global model moves.
    recent_norms : tuple of (float, float)
        (norm, norm per local step) of updates accepted in recent rounds, pooled with a cohort of
        fewer than three for the outlier test.
    strategy_check : callable, optional
        The strategy's own test of an update (``Strategy.check_update``): a reason to reject it, or None.
    """

    global_params: torch.Tensor
    num_samples: np.ndarray
    plan: LocalTrainingPlan
    reference_norm: float | None = None
    recent_norms: tuple[tuple[float, float], ...] = ()
    strategy_check: Callable[[ClientUpdate], str | None] | None = None

    def expected_steps(self, client_id: int) -> int:
        return self.plan.epochs * math.ceil(int(self.num_samples[client_id]) / self.plan.batch_size)


def lower_median(values: Iterable[float]) -> float:
    """The lower median (an actual element; of two values, the smaller): a minority cannot raise it."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


class ValidationHistory:
    """What the server remembers of recent rounds to judge the next one.

    - ``reference_norm``: the lower median norm of the global models of the last ``rounds`` rounds.
      One poisoned round (fewer than half the window) cannot move it, so an exploded global model
      does not widen the bound for the next attacker.
    - ``recent_norms``: (norm, norm per local step) of the updates accepted in those rounds, which
      give a cohort too small for its own median (fewer than three) a yardstick.

    Parameters
    ----------
    rounds : int
        Window length; 1 follows the current global model.
    state : dict, optional
        A previous :meth:`state_dict` (from a checkpoint).
    """

    def __init__(self, rounds: int, state: dict[str, Any]) -> None:
        self.global_norms: deque[float] = deque(state["global_norms"], maxlen=rounds)
        self.update_norms: deque[list[list[float]]] = deque(state.get("update_norms", []), maxlen=rounds)

    @classmethod
    def of_run(cls, rounds: int, extra: dict[str, Any], params: torch.Tensor) -> ValidationHistory:
        """The history a run keeps in ``RunState.extra["validation"]`` (so a resumed run sees the same);
        before the first step, just the norm of the initial model ``params``."""
        return cls(rounds, extra.get("validation") or {"global_norms": [float(params.norm())]})

    def observe(self, params: torch.Tensor, accepted: Sequence[UpdateSummary]) -> None:
        """Record the global model a round ended with and the updates it accepted."""
        self.global_norms.append(float(params.norm()))
        self.update_norms.append([[u.norm, u.norm / u.local_steps] for u in accepted])

    @property
    def reference_norm(self) -> float:
        return lower_median(self.global_norms)

    @property
    def recent_norms(self) -> tuple[tuple[float, float], ...]:
        return tuple((pair[0], pair[1]) for recorded in self.update_norms for pair in recorded)

    def state_dict(self) -> dict[str, Any]:
        return {"global_norms": list(self.global_norms), "update_norms": list(self.update_norms)}


@dataclass(frozen=True)
class UpdateSummary:
    """What validation and a round's records need of an update, without its delta.

    Attributes
    ----------
    client_id, num_samples, local_steps, metrics :
        As in the :class:`ClientUpdate`.
    norm : float
        L2 norm of the delta (NaN when ``problem`` says it is malformed).
    problem : str, optional
        Why the update fails the checks that need no other update (see :func:`summarise_update`).
    """

    client_id: int
    num_samples: int
    local_steps: int
    metrics: dict[str, float]
    norm: float
    problem: str | None = None

    @classmethod
    def of(cls, update: ClientUpdate, problem: str | None = None) -> UpdateSummary:
        """The summary of ``update`` (its norm measured unless it is malformed)."""
        norm = float(update.delta.norm()) if problem is None else math.nan
        return cls(update.client_id, update.num_samples, update.local_steps, dict(update.metrics), norm, problem)


def summarise_update(update: ClientUpdate, server: ServerKnowledge, max_norm_ratio: float) -> UpdateSummary:
    """Judge ``update`` on its own: everything :func:`validate_updates` checks but the cohort outlier test.

    Needs only what the server sends with a task, so a worker holding the delta can run it and send
    the summary instead of the delta.
    """
    problem = _malformation(update, server, server.global_params.numel())
    summary = UpdateSummary.of(update, problem)
    reference = float(server.global_params.norm()) if server.reference_norm is None else server.reference_norm
    if problem is None and reference > 0 and summary.norm > max_norm_ratio * reference:
        problem = (f"delta norm {summary.norm:.3g} exceeds {max_norm_ratio:g} x the global model's norm "
                   f"{reference:.3g}")
        summary = UpdateSummary(summary.client_id, summary.num_samples, summary.local_steps, summary.metrics,
                                summary.norm, problem)
    return summary


def validate_updates(
    updates: Sequence[ClientUpdate], server: ServerKnowledge, max_norm_ratio: float
) -> tuple[list[ClientUpdate], list[Rejection]]:
    """Split updates into accepted and rejected (see :func:`judge_summaries` for the rules)."""
    summaries = [summarise_update(update, server, max_norm_ratio) for update in updates]
    accepted, rejected = judge_summaries(summaries, server, max_norm_ratio)
    return [updates[i] for i in accepted], rejected


def judge_summaries(
    summaries: Sequence[UpdateSummary], server: ServerKnowledge, max_norm_ratio: float
) -> tuple[list[int], list[Rejection]]:
    """The positions of the accepted updates among ``summaries``, and the rejections.

    Rejected, with the reason:

    - a delta of the wrong shape or dtype, or with any NaN/Inf;
    - a ``num_samples`` or ``local_steps`` other than the server's record and plan imply
      (a client claiming more data would take a larger share of the average);
    - what ``server.strategy_check`` finds (e.g. a missing or impossible Non-IID degree);
    - an L2 norm above ``max_norm_ratio`` x the reference model norm (``server.reference_norm``,
      else the global model's norm; checked for any cohort size, so a single client cannot blow
      the model up when the cohort is small);
    - with three or more well-formed updates, an outlier of the cohort: a norm above
      ``max_norm_ratio`` x the cohort's median norm *and* a norm per local step above
      ``max_norm_ratio`` x the median norm per step. The medians are robust to a minority of
      attackers; asking for both keeps honest clients that moved far because they took many
      more steps than the rest, and never rejects more than the plain norm test would. A cohort
      of one or two is judged the same way against itself and ``server.recent_norms``.

    The first four come from :func:`summarise_update` (``UpdateSummary.problem``).
    """
    well_formed: list[int] = []
    rejected: list[Rejection] = []
    for position, summary in enumerate(summaries):
        if summary.problem is None:
            well_formed.append(position)
        else:
            rejected.append(Rejection(summary.client_id, summary.problem))
    norms = torch.tensor([summaries[i].norm for i in well_formed])
    per_step = norms / torch.tensor([float(summaries[i].local_steps) for i in well_formed])
    pool, per_step_pool, medians_of = norms, per_step, "the cohort medians"
    if len(well_formed) < 3 and server.recent_norms:
        recent = torch.tensor(server.recent_norms)  # (m, 2): norm, norm per step
        pool, per_step_pool = torch.cat([norms, recent[:, 0]]), torch.cat([per_step, recent[:, 1]])
        medians_of = "the medians of the cohort and recent rounds"
    if len(pool) < 3:  # a median of fewer than three says little
        return well_formed, rejected
    limit = max_norm_ratio * float(pool.median())
    per_step_limit = max_norm_ratio * float(per_step_pool.median())
    accepted = []
    for position, norm, step_norm in zip(well_formed, norms.tolist(), per_step.tolist(), strict=True):
        if norm > limit and step_norm > per_step_limit:
            reason = (f"delta norm {norm:.3g} exceeds {limit:.3g} and per local step {step_norm:.3g} exceeds "
                      f"{per_step_limit:.3g} ({max_norm_ratio:g} x {medians_of})")
            rejected.append(Rejection(summaries[position].client_id, reason))
        else:
            accepted.append(position)
    return accepted, rejected


def _malformation(update: ClientUpdate, server: ServerKnowledge, num_params: int) -> str | None:
    delta = update.delta
    if delta.dtype != torch.float32 or delta.shape != (num_params,):
        return f"delta has shape {tuple(delta.shape)} {delta.dtype}, expected ({num_params},) float32"
    if not bool(torch.isfinite(delta).all()):
        return "delta contains NaN or Inf"
    if not 0 <= update.client_id < len(server.num_samples):
        return f"client_id {update.client_id} is not a client of this federation"
    registered = int(server.num_samples[update.client_id])
    if update.num_samples != registered:
        return f"num_samples is {update.num_samples}, the client holds {registered}"
    expected_steps = server.expected_steps(update.client_id)
    if update.local_steps != expected_steps:
        return f"local_steps is {update.local_steps}, the plan implies {expected_steps}"
    return server.strategy_check(update) if server.strategy_check is not None else None
