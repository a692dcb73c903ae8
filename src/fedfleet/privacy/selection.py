"""Selection rules: pick the best feasible candidate, or say which one came closest."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedfleet.errors import FedfleetError


class SelectionError(FedfleetError):
    """No candidate meets the selection rule; the message names the best available one."""


def pick_feasible(objective: Sequence[float], violation: Sequence[float]) -> int | None:
    """Index of the largest ``objective`` among candidates with zero ``violation``.

    Ties go to the earliest candidate. Returns None when every candidate violates the rule.
    """
    objective_arr = np.asarray(objective, dtype=float)
    violation_arr = np.asarray(violation, dtype=float)
    feasible = np.flatnonzero(violation_arr <= 0.0)
    if feasible.size == 0:
        return None
    return int(feasible[np.argmax(objective_arr[feasible])])


def least_violating(objective: Sequence[float], violation: Sequence[float]) -> int:
    """Index of the candidate that misses the rule by least (ties: larger objective)."""
    order = np.lexsort((-np.asarray(objective, dtype=float), np.asarray(violation, dtype=float)))
    return int(order[0])
