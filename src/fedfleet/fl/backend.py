"""Where client training runs: the seam between the runner and local or cluster execution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from torch import nn

from fedfleet.fl.messages import ClientUpdate, TrainTask


class Backend(Protocol):
    """Executes training tasks and returns their updates in task order."""

    def run(self, tasks: Sequence[TrainTask]) -> list[ClientUpdate]:
        ...

    def close(self) -> None:
        """Release what :meth:`run` started (processes, actors); a later :meth:`run` may start them again."""
        ...

    def set_model(self, model: nn.Module) -> None:
        """Train later tasks on ``model``'s architecture (a server hook replaced the global model)."""
        ...


class ClientHook(Protocol):
    """Transforms an update after local training (e.g. compression, a simulated attacker)."""

    def __call__(self, task: TrainTask, update: ClientUpdate) -> ClientUpdate:
        ...
