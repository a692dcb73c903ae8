"""Scoped control of PyTorch's intra-op thread count."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the enclosed block with ``count`` intra-op threads, then restore the previous count.

    Small federated models gain nothing from several threads per client and, on a busy
    machine, lose much to thread contention; ``None`` leaves PyTorch's setting alone.
    """
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
