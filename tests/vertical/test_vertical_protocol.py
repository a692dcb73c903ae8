"""The protocol messages: split-inference byte accounting, framing, and malformed messages."""

from __future__ import annotations

import json

import pytest
import torch

from fedfleet.errors import UpdateRejected
from fedfleet.vertical.channel import SerializingChannel
from fedfleet.vertical.data import load_vertical
from fedfleet.vertical.protocol import Message, PassiveService, encode_rows, pack, unpack
from fedfleet.vertical.trainer import VerticalClassifier

SMALL = {"embedding_dim": 4, "bottom_hidden": 16, "interaction_dim": 8, "top_hidden": 8, "epochs": 2,
         "batch_size": 32}


@pytest.fixture(scope="module")
def digits() -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor], torch.Tensor]:
    data = load_vertical("digits", num_parties=3, max_train=300, max_test=150)
    xs, y, _ = data.train.align("salt")
    xt, yt, _ = data.test.align("salt")
    return xs, y, xt, yt


def test_evaluation_and_inference_bytes_equal_the_tensors_that_cross(digits) -> None:  # type: ignore[no-untyped-def]
    xs, y, xt, yt = digits
    estimator = VerticalClassifier(**SMALL, channel="identity").fit(xs, y, 10, eval_set=(xt, yt))
    passives, rows, dim = len(xs) - 1, len(yt), SMALL["embedding_dim"]
    per_pass_up, per_pass_down = passives * rows * dim * 4, passives * rows * 8  # float32 embeddings, int64 rows
    channel = estimator.channel_eval_
    assert [h["bytes_eval_up"] for h in estimator.history_] == [per_pass_up, 2 * per_pass_up]
    assert [h["bytes_eval_down"] for h in estimator.history_] == [per_pass_down, 2 * per_pass_down]
    assert channel.messages_up == channel.messages_down == 2 * passives  # one batch (< 2048 rows) per pass
    training = (estimator.channel_.bytes_up, estimator.channel_.bytes_down)
    predicted = estimator.predict(xt)
    assert (channel.bytes_up, channel.bytes_down) == (3 * per_pass_up, 3 * per_pass_down)
    assert (estimator.channel_.bytes_up, estimator.channel_.bytes_down) == training  # inference is counted apart
    with torch.no_grad():
        assert torch.equal(predicted, estimator.model_(xt).argmax(1))  # split inference = the unsplit model
    embeddings = estimator.passive_embeddings(xt)
    assert [tuple(z.shape) for z in embeddings] == [(rows, dim)] * passives
    assert channel.bytes_up == 4 * per_pass_up


def test_serialized_inference_counts_the_encoded_messages(digits) -> None:  # type: ignore[no-untyped-def]
    xs, y, xt, yt = digits
    estimator = VerticalClassifier(**SMALL).fit(xs, y, 10, eval_set=(xt, yt))
    raw = (len(xs) - 1) * len(yt) * SMALL["embedding_dim"] * 4
    up = estimator.history_[0]["bytes_eval_up"]
    assert raw < up < raw + 200 * (len(xs) - 1)  # safetensors adds a small header per message


def test_frames_round_trip() -> None:
    message = Message("embed", {"split": "train", "train": True}, encode_rows(torch.tensor([3, 1, 2])))
    assert unpack(pack(message)) == message


@pytest.mark.parametrize(
    ("blob", "error"),
    [
        (b"\x00\x00", "truncated"),
        (b"\x00\x00\x00\x40{}", "does not fit"),
        (b"\x00\x00\x00\x02\xff\xfe", "not UTF-8 JSON"),
        (b"\x00\x00\x00\x02[]", "kind None is unknown"),
        (len(b'{"kind": "exec"}').to_bytes(4, "big") + b'{"kind": "exec"}', "kind 'exec' is unknown"),
    ],
)
def test_malformed_frames_are_rejected_in_one_line(blob: bytes, error: str) -> None:
    with pytest.raises(UpdateRejected, match=error) as info:
        unpack(blob)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (Message("embed", {"split": "train", "train": True}, b"\x01\x02\x03"), "not int64 row positions"),
        (Message("embed", {"split": "train", "train": True}, encode_rows(torch.tensor([99]))), "outside 0..9"),
        (Message("embed", {"split": "secret", "train": False}, encode_rows(torch.tensor([0]))), "no 'secret' rows"),
        (Message("embed", {"split": "train"}, encode_rows(torch.tensor([0]))), "needs 'train'"),
        (Message("gradient", {}, b"garbage"), "not a valid tensor encoding"),
        (Message("setup", {"feature_dims": [3, 7], "num_classes": 2, "seed": 0, "sizes": {}}), "holds 5 features"),
    ],
)
def test_malformed_messages_are_rejected_by_the_passive_party(message: Message, error: str) -> None:
    service = PassiveService(1, {"train": torch.randn(10, 5)}, SerializingChannel())
    settings = {"feature_dims": [3, 5], "num_classes": 2, "seed": 0, "lr": 0.1, "momentum": 0.0,
                "sizes": {"embedding_dim": 4, "bottom_hidden": 8, "interaction_dim": 4, "top_hidden": 4}}
    assert service.handle(Message("setup", settings)).header == {"epoch": 0}
    service.handle(Message("embed", {"split": "train", "train": True}, encode_rows(torch.tensor([0, 1]))))
    with pytest.raises(UpdateRejected, match=error) as info:
        service.handle(unpack(pack(message)))
    assert "\n" not in str(info.value)


def test_messages_before_setup_are_refused() -> None:
    service = PassiveService(1, {"train": torch.randn(4, 2)}, SerializingChannel())
    assert json.loads(json.dumps(service.handle(Message("hello")).header)) == {
        "index": 1, "features": 2, "rows": {"train": 4}}
    with pytest.raises(UpdateRejected, match="before 'setup'"):
        service.handle(Message("embed", {"split": "train", "train": True}, encode_rows(torch.tensor([0]))))
