"""Reject bad client updates before they reach aggregation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from fedfleet.fl.messages import ClientUpdate


@dataclass(frozen=True)
class Rejection:
    """An update that was not aggregated, and why."""

    client_id: int
    reason: str


def validate_updates(
    updates: Sequence[ClientUpdate], num_params: int, max_norm_ratio: float
) -> tuple[list[ClientUpdate], list[Rejection]]:
    """Split updates into accepted and rejected.

    Rejected: a delta of the wrong shape or dtype, any NaN/Inf, a non-positive sample
    count, or an L2 norm above ``max_norm_ratio`` x the median norm of the well-formed
    updates in the cohort (the median is robust to a minority of attackers).
    """
    well_formed: list[ClientUpdate] = []
    rejected: list[Rejection] = []
    for update in updates:
        delta = update.delta
        if delta.dtype != torch.float32 or delta.shape != (num_params,):
            reason = f"delta has shape {tuple(delta.shape)} {delta.dtype}, expected ({num_params},) float32"
            rejected.append(Rejection(update.client_id, reason))
        elif not bool(torch.isfinite(delta).all()):
            rejected.append(Rejection(update.client_id, "delta contains NaN or Inf"))
        elif update.num_samples <= 0:
            rejected.append(Rejection(update.client_id, f"num_samples is {update.num_samples}"))
        else:
            well_formed.append(update)
    if len(well_formed) < 3:  # a median of fewer than three says little
        return well_formed, rejected
    norms = torch.stack([u.delta.norm() for u in well_formed])
    limit = max_norm_ratio * float(norms.median())
    accepted = []
    for update, norm in zip(well_formed, norms.tolist(), strict=True):
        if norm > limit:
            rejected.append(Rejection(update.client_id, f"delta norm {norm:.3g} exceeds {limit:.3g}"))
        else:
            accepted.append(update)
    return accepted, rejected
