"""Events on the virtual clock: a priority queue any simulation can drive.

Events are ordered by ``(time, rank, seq)``: virtual time first, then a ``rank`` the consumer
chooses for simultaneous events (e.g. arrivals before dispatches), then ``seq``, the order of
insertion, so the order never depends on anything but the calls made. Each event carries a
``kind`` (a string the consumer names; several consumers can share one queue with their own
kinds) and ``data`` of plain values (JSON scalars, lists, dicts with string keys), so the
whole queue turns into plain data for a checkpoint and back. Popping moves the queue's
``now``; only event times ever move it (wall-clock time is never involved).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Handler = Callable[["Event"], None]


class Halt(StrEnum):
    """Why :meth:`EventQueue.run` returned while its condition still held."""

    EMPTY = "empty"  # no event is pending: nothing can happen any more
    LIMIT = "limit"  # the next event comes after the time limit


@dataclass(frozen=True)
class Event:
    """One thing that happens at a moment of virtual time.

    Attributes
    ----------
    time : float
        Virtual seconds since the start of the simulation.
    rank : int
        Among events at the same time, lower ranks come first.
    seq : int
        Insertion number, the final tie-break.
    kind : str
        What happens (the consumer's name for it).
    data : dict
        Plain data describing it.
    """

    time: float
    rank: int
    seq: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[float, int, int]:
        return self.time, self.rank, self.seq


class EventQueue:
    """A priority queue of :class:`Event` with a virtual clock that only events move.

    Parameters
    ----------
    now : float
        The current virtual time.
    """

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self._heap: list[tuple[float, int, int, Event]] = []
        self._next_seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, time: float, kind: str, data: dict[str, Any] | None = None, rank: int = 0) -> Event:
        """Schedule ``kind`` at ``time`` (not before ``now``: nothing happens in the past)."""
        if time < self.now:
            raise ValueError(f"event {kind!r} at {time} is before the current virtual time {self.now}")
        event = Event(float(time), int(rank), self._next_seq, kind, dict(data or {}))
        self._next_seq += 1
        heapq.heappush(self._heap, (*event.key(), event))
        return event

    def peek(self) -> Event | None:
        """The next event without removing it; None when the queue is empty."""
        return self._heap[0][3] if self._heap else None

    def pop(self) -> Event:
        """Remove the next event and move ``now`` to its time."""
        if not self._heap:
            raise IndexError("pop from an empty event queue")
        event = heapq.heappop(self._heap)[3]
        self.now = event.time
        return event

    def discard(self, predicate: Callable[[Event], bool]) -> int:
        """Remove every pending event for which ``predicate`` is true; return how many."""
        kept = [entry for entry in self._heap if not predicate(entry[3])]
        removed = len(self._heap) - len(kept)
        if removed:
            self._heap = kept
            heapq.heapify(self._heap)
        return removed

    def pending(self, kind: str | None = None) -> list[Event]:
        """Pending events in the order they will happen (optionally of one kind)."""
        events = [entry[3] for entry in sorted(self._heap, key=lambda entry: entry[:3])]
        return [e for e in events if kind is None or e.kind == kind]

    def dispatch(self, handlers: Mapping[str, Handler]) -> Event:
        """Pop the next event and call the handler of its kind."""
        event = self.pop()
        handler = handlers.get(event.kind)
        if handler is None:
            raise KeyError(f"no handler for event kind {event.kind!r}; handlers: {', '.join(sorted(handlers))}")
        handler(event)
        return event

    def run(self, handlers: Mapping[str, Handler], keep_going: Callable[[], bool],
            after: Handler | None = None, limit: float | None = None) -> Halt | None:
        """Dispatch events while ``keep_going()``, calling ``after(event)`` once each is handled.

        Returns None once ``keep_going()`` is false, :attr:`Halt.EMPTY` when no event is left and
        :attr:`Halt.LIMIT` when the next one comes after ``limit`` (which is then not popped).
        """
        while keep_going():
            upcoming = self.peek()
            if upcoming is None:
                return Halt.EMPTY
            if limit is not None and upcoming.time > limit:
                return Halt.LIMIT
            event = self.dispatch(handlers)
            if after is not None:
                after(event)
        return None

    def state_dict(self) -> dict[str, Any]:
        """The queue as plain data: ``now``, the next ``seq`` and the pending events in order."""
        return {
            "now": self.now,
            "next_seq": self._next_seq,
            "events": [{"time": e.time, "rank": e.rank, "seq": e.seq, "kind": e.kind, "data": e.data}
                       for e in self.pending()],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> EventQueue:
        """Rebuild a queue from :meth:`state_dict` output; it continues exactly as the original."""
        queue = cls(float(state["now"]))
        for raw in state["events"]:
            event = Event(float(raw["time"]), int(raw["rank"]), int(raw["seq"]), str(raw["kind"]), dict(raw["data"]))
            queue._heap.append((*event.key(), event))
        heapq.heapify(queue._heap)
        queue._next_seq = int(state["next_seq"])
        return queue
