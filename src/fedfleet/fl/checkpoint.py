"""Resume state: model, strategy state, RNG states, clock, history; one file per checkpoint."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fedfleet.errors import CheckpointError

CHECKPOINT_FILE = "state.pt"


@dataclass
class RunState:
    """Everything a synchronous or asynchronous run needs to continue exactly where it stopped."""

    step: int  # completed rounds (sync) or aggregations (async)
    params: torch.Tensor
    strategy_state: dict[str, Any]
    rng_state: dict[str, Any]  # numpy Generator.bit_generator.state
    clock: float
    wall_time_s: float
    records: list[dict[str, Any]]
    totals: dict[str, int]  # cumulative counters (updates, bytes)
    extra: dict[str, Any]  # runner-specific state (e.g. the async event queue)


def save_checkpoint(folder: Path, state: RunState) -> Path:
    """Write ``state`` atomically to ``folder/state.pt``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_FILE
    partial = path.with_suffix(".tmp")
    torch.save(state.__dict__, partial)
    os.replace(partial, path)
    return path


def load_checkpoint(folder: Path) -> RunState:
    """Read the checkpoint in ``folder`` (a run's ``checkpoint/`` directory)."""
    path = folder / CHECKPOINT_FILE
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; the run saved none (set checkpoint_every > 0)")
    try:
        payload = torch.load(path, weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}); it may be truncated") from None
    return RunState(**payload)
