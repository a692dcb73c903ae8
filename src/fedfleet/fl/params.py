"""Flat parameter vectors: models travel as one 1-D float32 tensor, never as module copies."""

from __future__ import annotations

import torch
from torch import nn


def trainable_state(model: nn.Module) -> list[torch.Tensor]:
    """The tensors that make up a model's flat vector: parameters, then floating-point buffers."""
    buffers = [b for b in model.buffers() if b.is_floating_point()]
    return [*model.parameters(), *buffers]


def num_params(model: nn.Module) -> int:
    """Length of the model's flat vector."""
    return sum(t.numel() for t in trainable_state(model))


def get_flat(model: nn.Module) -> torch.Tensor:
    """A detached copy of the model's state as a flat float32 vector, shape (num_params,)."""
    return torch.cat([t.detach().reshape(-1) for t in trainable_state(model)]).to(torch.float32)


@torch.no_grad()
def set_flat(model: nn.Module, flat: torch.Tensor) -> None:
    """Copy ``flat`` (shape (num_params,)) into the model's parameters and buffers in place."""
    offset = 0
    for tensor in trainable_state(model):
        size = tensor.numel()
        tensor.copy_(flat[offset : offset + size].view_as(tensor))
        offset += size
    if offset != flat.numel():
        raise ValueError(f"flat vector has {flat.numel()} values, the model needs {offset}")
