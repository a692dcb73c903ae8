"""The link between parties: tensors go through bytes, are counted, and are validated.

Every embedding (passive -> active, "up") and every gradient (active -> passive, "down")
passes through a channel, and so does every byte message (the alignment protocol's).
:class:`SerializingChannel` encodes tensors with safetensors so that a network transport
can replace it without touching the training code;
:class:`IdentityChannel` hands tensors over unchanged (same validation and accounting),
for testing that serialisation changes nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from fedfleet.errors import UpdateRejected

Direction = Literal["up", "down"]


@dataclass(frozen=True)
class TensorSpec:
    """What the receiver accepts: a shape (None = any size on that axis) and a dtype."""

    shape: tuple[int | None, ...]
    dtype: torch.dtype = torch.float32

    def check(self, tensor: torch.Tensor, what: str) -> None:
        """Raise UpdateRejected unless ``tensor`` matches this spec and is finite."""
        expected = tuple("*" if size is None else size for size in self.shape)
        shape_ok = tensor.dim() == len(self.shape) and all(
            size is None or size == actual for size, actual in zip(self.shape, tensor.shape, strict=True)
        )
        if not shape_ok:
            raise UpdateRejected(
                f"{what} has shape {tuple(tensor.shape)}, expected {expected}; "
                "check the sending party's model output size"
            )
        if tensor.dtype != self.dtype:
            raise UpdateRejected(f"{what} has dtype {tensor.dtype}, expected {self.dtype}")
        if not torch.isfinite(tensor).all():
            raise UpdateRejected(f"{what} contains NaN or Inf values; the sending party diverged")


class Channel(ABC):
    """Base channel: counts bytes each way and validates what arrives.

    Attributes
    ----------
    bytes_up, bytes_down : int
        Payload bytes sent passive -> active and active -> passive so far.
    messages_up, messages_down : int
        Number of messages (tensors and byte messages) sent each way.
    """

    def __init__(self) -> None:
        self.bytes_up = 0
        self.bytes_down = 0
        self.messages_up = 0
        self.messages_down = 0

    @abstractmethod
    def encode(self, tensor: torch.Tensor) -> tuple[object, int]:
        """The message carrying ``tensor`` and its size in bytes."""

    @abstractmethod
    def decode(self, message: object) -> torch.Tensor:
        """The tensor carried by ``message``."""

    def transfer(
        self, tensor: torch.Tensor, direction: Direction, spec: TensorSpec, what: str
    ) -> torch.Tensor:
        """Send ``tensor`` one way and return what the receiver accepts.

        Parameters
        ----------
        tensor : torch.Tensor
            The sender's tensor (detached from the sender's graph by the transfer).
        direction : {"up", "down"}
            "up" for passive -> active, "down" for active -> passive.
        spec : TensorSpec
            What the receiver accepts.
        what : str
            Name used in error messages, e.g. "embedding from party 1".

        Raises
        ------
        UpdateRejected
            If the received tensor has the wrong shape or dtype, or is not finite.
        """
        message, size = self.encode(tensor.detach())
        self.count(size, direction)
        received = self.decode(message)
        spec.check(received, what)
        return received

    def receive(self, message: object, direction: Direction, spec: TensorSpec, what: str) -> torch.Tensor:
        """Count an encoded tensor that arrived one way, decode it and validate it against ``spec``.

        The receiving half of :meth:`transfer`, for messages encoded elsewhere (by another
        process): ``message`` is what :meth:`encode` returned there.

        Raises
        ------
        UpdateRejected
            If the message does not decode, or the tensor has the wrong shape or dtype, or is not finite.
        """
        size = len(message) if isinstance(message, bytes) else _tensor_bytes(message)
        self.count(size, direction)
        received = self.decode(message)
        spec.check(received, what)
        return received

    def send_bytes(self, message: bytes, direction: Direction, what: str) -> bytes:
        """Send a byte message one way, counted like a tensor; return what the receiver gets.

        Raises
        ------
        UpdateRejected
            If ``message`` is not bytes.
        """
        if not isinstance(message, bytes):
            raise UpdateRejected(f"{what} is {type(message).__name__}, expected bytes")
        self.count(len(message), direction)
        return bytes(message)

    def count(self, size: int, direction: Direction) -> None:
        """Add one message of ``size`` bytes sent ``direction`` to the counts."""
        if direction == "up":
            self.bytes_up += size
            self.messages_up += 1
        else:
            self.bytes_down += size
            self.messages_down += 1


def _tensor_bytes(message: object) -> int:
    if not isinstance(message, torch.Tensor):
        raise UpdateRejected(f"channel message is {type(message).__name__}, expected bytes or a tensor")
    return message.numel() * message.element_size()


class SerializingChannel(Channel):
    """Encodes each tensor to safetensors bytes and decodes it on the other side."""

    def encode(self, tensor: torch.Tensor) -> tuple[object, int]:
        blob = save_tensors({"tensor": tensor.contiguous()})
        return blob, len(blob)

    def decode(self, message: object) -> torch.Tensor:
        if not isinstance(message, bytes):
            raise UpdateRejected(f"channel message is {type(message).__name__}, expected bytes")
        try:
            return load_tensors(message)["tensor"]
        except Exception as exc:  # safetensors raises its own error types for corrupt bytes
            raise UpdateRejected(f"channel message is not a valid tensor encoding ({exc})") from None


class IdentityChannel(Channel):
    """Hands tensors over unchanged (a detached clone); counts their raw size in bytes."""

    def encode(self, tensor: torch.Tensor) -> tuple[object, int]:
        return tensor.clone(), _tensor_bytes(tensor)

    def decode(self, message: object) -> torch.Tensor:
        if not isinstance(message, torch.Tensor):
            raise UpdateRejected(f"channel message is {type(message).__name__}, expected a tensor")
        return message
