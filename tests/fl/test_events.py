"""The event queue: deterministic order, no events in the past, exact round-trip through checkpoint data."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedfleet.fl.events import EventQueue, Halt
from fedfleet.fl.state_codec import decode, encode


def test_order_is_time_then_rank_then_insertion():
    queue = EventQueue()
    queue.push(2.0, "late")
    queue.push(1.0, "dispatch", rank=1)
    queue.push(1.0, "arrive-a")
    queue.push(1.0, "arrive-b")
    assert [queue.pop().kind for _ in range(4)] == ["arrive-a", "arrive-b", "dispatch", "late"]
    assert queue.now == 2.0


def test_nothing_is_scheduled_in_the_past():
    queue = EventQueue()
    queue.push(5.0, "x")
    queue.pop()
    with pytest.raises(ValueError, match="before the current virtual time"):
        queue.push(4.0, "y")


@given(st.lists(st.tuples(st.floats(0, 1e6), st.integers(0, 3)), max_size=40))
def test_pop_order_is_sorted_by_key(items):
    queue = EventQueue()
    for time, rank in items:
        queue.push(time, "e", rank=rank)
    keys = [queue.pop().key() for _ in items]
    assert keys == sorted(keys)


def test_state_round_trip_continues_identically():
    queue = EventQueue()
    for i, time in enumerate([3.0, 1.0, 1.0, 2.5]):
        queue.push(time, f"k{i % 2}", {"task": str(i), "nested": [i, {"x": 0.1 * i}]}, rank=i % 2)
    queue.pop()
    structure, tensors = encode(queue.state_dict())
    copy = EventQueue.from_state(decode(json.loads(json.dumps(structure)), tensors))
    for q in (queue, copy):
        q.push(4.0, "new", {"task": "9"})
    drained = [[(e.key(), e.kind, e.data) for e in (q.pop() for _ in range(len(q)))] for q in (queue, copy)]
    assert drained[0] == drained[1] and len(drained[0]) == 4


def test_discard_and_dispatch():
    queue = EventQueue()
    queue.push(1.0, "arrive", {"task": "1"})
    queue.push(2.0, "timeout", {"task": "1"})
    queue.push(3.0, "arrive", {"task": "2"})
    assert queue.discard(lambda e: e.data["task"] == "1") == 2
    seen = []
    queue.dispatch({"arrive": seen.append})
    assert [e.data["task"] for e in seen] == ["2"] and len(queue) == 0
    queue.push(4.0, "unknown")
    with pytest.raises(KeyError, match="no handler for event kind 'unknown'"):
        queue.dispatch({"arrive": seen.append})


def test_run_stops_on_its_condition_an_empty_queue_or_the_limit():
    queue, seen = EventQueue(), []
    for t in (1.0, 2.0, 3.0):
        queue.push(t, "tick", {"t": t})
    handlers = {"tick": lambda event: seen.append(event.data["t"])}
    assert queue.run(handlers, lambda: len(seen) < 1) is None and seen == [1.0]
    assert queue.run(handlers, lambda: True, limit=2.5) is Halt.LIMIT and seen == [1.0, 2.0]
    assert queue.now == 2.0 and len(queue) == 1  # the event after the limit stays pending
    after = []
    assert queue.run(handlers, lambda: True, after=lambda event: after.append(event.kind)) is Halt.EMPTY
    assert seen == [1.0, 2.0, 3.0] and after == ["tick"]
