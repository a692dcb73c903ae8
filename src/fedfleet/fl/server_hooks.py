"""Server hooks: the seam through which a method may replace the global model between rounds.

A hook sees the global model after each round's aggregation and may hand back another one:
a different architecture (structured pruning), or the same architecture with other
parameters (a server-side mask). The runner then trains the next round's clients on the
replacement, sizes messages and device compute by it, and checkpoints the hook's state so a
resumed run rebuilds the same architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from torch import nn


@dataclass(frozen=True)
class ModelReplacement:
    """A new global model from a server hook.

    Attributes
    ----------
    model : nn.Module
        The replacement, its parameters loaded; the next round's clients train it.
    compute_scale : float
        Local training cost of ``model`` relative to the run's initial model (e.g. the ratio of
        training FLOPs); the time model stretches device compute by it.
    """

    model: nn.Module
    compute_scale: float = 1.0


class ServerHook(Protocol):
    """Observes the global model after each round and may replace it (see :class:`ModelReplacement`)."""

    def on_round_end(self, round_index: int, model: nn.Module) -> ModelReplacement | None:
        """``model`` holds the round's aggregate; return a replacement, or None to keep it."""
        ...

    def record(self) -> dict[str, Any]:
        """Fields added to each metrics record and to the summary (e.g. per-layer rates, FLOPs)."""
        ...

    def summary(self) -> dict[str, Any]:
        """Fields added to the summary alone (e.g. the decisions the hook took)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (values :mod:`fedfleet.fl.state_codec` encodes)."""
        ...

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> nn.Module:
        """Load a checkpointed state; return the model architecture it had reached, built from the
        run's initial ``model`` (the runner then loads the checkpoint's parameters into it)."""
        ...
