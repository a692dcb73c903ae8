"""Scoped control of PyTorch's intra-op thread count."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def resolve_count(value: int | str) -> int:
    """``"auto"`` is the number of cores this process may use; an int is taken as is."""
    if value == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    return int(value)


@contextmanager
def torch_threads(count: int | str | None) -> Iterator[None]:
    """Run the enclosed block with ``count`` intra-op threads (``"auto"``: the cores), then restore the previous count.

    Small federated models gain nothing from several threads per client and, on a busy
    machine, lose much to thread contention; ``None`` leaves PyTorch's setting alone.
    """
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(resolve_count(count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
