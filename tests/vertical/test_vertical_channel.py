"""The channel: exact round trips, byte accounting and rejection of bad tensors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.errors import UpdateRejected
from fedfleet.vertical.channel import IdentityChannel, SerializingChannel, TensorSpec

DTYPES = [torch.float32, torch.float64, torch.float16, torch.int64, torch.bfloat16]


@settings(max_examples=50, deadline=None)
@given(
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=3),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16]),
    seed=st.integers(0, 2**31 - 1),
)
def test_serializing_channel_round_trips_exactly(shape: list[int], dtype: torch.dtype, seed: int) -> None:
    tensor = (torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 100).to(dtype)
    channel = SerializingChannel()
    received = channel.transfer(tensor, "up", TensorSpec(tuple(shape), dtype), "t")
    assert received.dtype == dtype and received.shape == tensor.shape
    assert torch.equal(received, tensor)
    assert channel.bytes_up >= tensor.numel() * tensor.element_size() and channel.bytes_down == 0


def test_extreme_float_values_survive_bit_for_bit() -> None:
    tensor = torch.tensor([1e-45, -0.0, 3.4028235e38, 1.0000001], dtype=torch.float32)
    received = SerializingChannel().transfer(tensor, "down", TensorSpec((4,)), "t")
    assert received.view(torch.int32).tolist() == tensor.view(torch.int32).tolist()


def test_bytes_are_counted_per_direction() -> None:
    channel = IdentityChannel()
    spec = TensorSpec((None, 4))
    channel.transfer(torch.zeros(3, 4), "up", spec, "t")
    channel.transfer(torch.zeros(2, 4), "down", spec, "t")
    assert (channel.bytes_up, channel.bytes_down) == (48, 32)
    assert (channel.messages_up, channel.messages_down) == (1, 1)


def test_received_tensor_is_detached_from_the_sender() -> None:
    sent = torch.ones(2, 2, requires_grad=True) * 2
    received = SerializingChannel().transfer(sent, "up", TensorSpec((2, 2)), "t")
    assert not received.requires_grad


@pytest.mark.parametrize("channel", [SerializingChannel(), IdentityChannel()])
@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (torch.zeros(4, 3), "has shape"),
        (torch.zeros(4), "has shape"),
        (torch.zeros(4, 8, dtype=torch.float64), "has dtype"),
        (torch.full((4, 8), float("nan")), "NaN or Inf"),
        (torch.tensor([[float("inf")] * 8] * 4), "NaN or Inf"),
    ],
)
def test_bad_embeddings_are_rejected(channel, tensor: torch.Tensor, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UpdateRejected, match=message):
        channel.transfer(tensor, "up", TensorSpec((None, 8)), "embedding from party 1")


def test_corrupt_bytes_are_rejected() -> None:
    with pytest.raises(UpdateRejected, match="not a valid tensor encoding"):
        SerializingChannel().decode(b"\x00garbage")
    with pytest.raises(UpdateRejected, match="expected bytes"):
        SerializingChannel().decode("text")


def test_byte_messages_are_counted_and_must_be_bytes() -> None:
    channel = IdentityChannel()
    assert channel.send_bytes(b"abc", "up", "m") == b"abc"
    channel.send_bytes(b"", "down", "m")
    assert (channel.bytes_up, channel.bytes_down, channel.messages_up, channel.messages_down) == (3, 0, 1, 1)
    with pytest.raises(UpdateRejected, match="PSI setup from party 1 is str, expected bytes"):
        channel.send_bytes("abc", "up", "PSI setup from party 1")  # type: ignore[arg-type]
