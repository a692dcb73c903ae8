"""Callbacks observe a run (progress bars, early stopping, fault injection in tests)."""

from __future__ import annotations

from typing import Any, Protocol


class Callback(Protocol):
    """Notified as a run progresses; every method is optional in practice (see ``BaseCallback``)."""

    def on_start(self, total_steps: int, start_step: int) -> None: ...

    def on_step_end(self, step: int, record: dict[str, Any] | None) -> None: ...

    def on_end(self, summary: dict[str, Any]) -> None: ...


class BaseCallback:
    """No-op implementations to subclass."""

    def on_start(self, total_steps: int, start_step: int) -> None:
        del total_steps, start_step

    def on_step_end(self, step: int, record: dict[str, Any] | None) -> None:
        del step, record

    def on_end(self, summary: dict[str, Any]) -> None:
        del summary
