"""The vertical protocol as messages: one implementation, two transports.

The active party drives; each passive party answers. A :class:`Message` is a kind, a JSON
header and a payload: row positions as raw int64 little-endian bytes, or a tensor encoded by
the channel (safetensors bytes; a tensor object on the in-process identity channel).

======================  =========================  ===================================
active -> passive       header                     passive -> active
======================  =========================  ===================================
``hello``               --                         ``features``, ``rows`` per split
``setup``               model sizes, lr, seed ...  ``epoch`` it starts from
``embed`` (row bytes)   ``split``, ``train``       embedding (batch, embedding_dim)
``gradient`` (tensor)   --                         --
``checkpoint``          ``epoch``                  --
``stop``                --                         --
======================  =========================  ===================================

Before ``hello`` the parties align their rows with ``align``, ``positions`` and ``size``
(:mod:`fedfleet.vertical.party_alignment`), which a service with an :class:`Aligner` answers.

:class:`PassiveService` is the passive party's side: it answers one message at a time.
:class:`PassiveLink` is the active party's handle on one passive party: it sends messages
through a transport (any callable ``Message -> Message``), counts every payload in its
channel and validates every reply. In one process the transport is the service's
:meth:`~PassiveService.handle`; over the network it is
:class:`~fedfleet.vertical.http.HttpTransport`, and the passive process runs the same service
behind an HTTP server (:func:`~fedfleet.vertical.http.serve`). :func:`pack` / :func:`unpack`
frame a message as bytes for the network: a 4-byte big-endian header length, the UTF-8 JSON
header, then the payload. Nothing received is ever executed or unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from fedfleet.errors import UpdateRejected
from fedfleet.vertical.channel import Channel, TensorSpec
from fedfleet.vertical.checkpoint import load_part, save_part
from fedfleet.vertical.model import build_split_model
from fedfleet.vertical.parties import PassiveParty, sgd

ALIGN_KINDS = ("align", "positions", "size")
KINDS = ("hello", "setup", "embed", "gradient", "checkpoint", "stop", *ALIGN_KINDS)
MAX_HEADER = 1 << 16  # bytes of JSON header a party accepts


@dataclass(frozen=True)
class Message:
    """One protocol message: ``kind`` (one of :data:`KINDS` or ``reply``), a JSON-able header, a payload."""

    kind: str
    header: dict[str, Any] = field(default_factory=dict)
    payload: object = b""


Transport = Callable[[Message], Message]


class Aligner(Protocol):
    """Answers a passive party's alignment messages (:data:`ALIGN_KINDS`)."""

    def handle(self, message: Message) -> tuple[Message, dict[str, torch.Tensor]]:
        """The reply, and the splits it aligned (features in the common order)."""


def pack(message: Message) -> bytes:
    """``message`` as bytes for the network: header length (4 bytes, big-endian), JSON header, payload."""
    if not isinstance(message.payload, bytes):
        raise UpdateRejected(f"{message.kind} message payload is {type(message.payload).__name__}; "
                             "the network needs bytes (use train.channel=serializing)")
    header = json.dumps({"kind": message.kind, **message.header}).encode()
    return len(header).to_bytes(4, "big") + header + message.payload


def unpack(blob: bytes) -> Message:
    """The message framed by :func:`pack`.

    Raises
    ------
    UpdateRejected
        If ``blob`` is truncated, its header is not a JSON object with a known ``kind``.
    """
    if len(blob) < 4:
        raise UpdateRejected(f"message of {len(blob)} bytes is truncated (no header length); "
                             "check that both parties run the same fedfleet version")
    size = int.from_bytes(blob[:4], "big")
    if size > MAX_HEADER or 4 + size > len(blob):
        raise UpdateRejected(f"message header length {size} does not fit the {len(blob)}-byte message; "
                             "the message is truncated or not a fedfleet vertical message")
    try:
        header = json.loads(blob[4 : 4 + size].decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UpdateRejected("message header is not UTF-8 JSON; not a fedfleet vertical message") from None
    if not isinstance(header, dict) or header.get("kind") not in (*KINDS, "reply"):
        kind = header.get("kind") if isinstance(header, dict) else None
        raise UpdateRejected(f"message kind {kind!r} is unknown; expected one of: {', '.join(KINDS)}")
    kind = header.pop("kind")
    return Message(kind, header, bytes(blob[4 + size :]))


def encode_rows(rows: torch.Tensor) -> bytes:
    """Row positions (int64, shape (batch,)) as little-endian bytes."""
    return rows.numpy().astype("<i8").tobytes()


def decode_rows(payload: object, limit: int, what: str) -> torch.Tensor:
    """Row positions from :func:`encode_rows`, each checked to lie in ``[0, limit)``."""
    if not isinstance(payload, bytes) or len(payload) % 8:
        size = len(payload) if isinstance(payload, bytes) else type(payload).__name__
        raise UpdateRejected(f"{what} is not int64 row positions ({size} bytes, expected a multiple of 8)")
    rows = torch.from_numpy(np.frombuffer(payload, dtype="<i8").copy())
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= limit):
        raise UpdateRejected(f"{what} name rows outside 0..{limit - 1}; the parties hold different tables")
    return rows


def _require(header: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = header.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise UpdateRejected(f"{what} header needs {key!r} ({kind.__name__}), got {value!r}")
    return value


class PassiveService:
    """A passive party's side of the protocol: it answers one message at a time.

    Parameters
    ----------
    index : int
        The party's number (1.. for passive parties).
    tables : mapping of str to torch.Tensor
        Its features per split (e.g. "train", "test"), shape (rows, features), rows in the
        aligned order. Training uses "train".
    codec : Channel
        Encodes embeddings and decodes gradients (the active party counts the bytes).
    directory : Path, optional
        Where it writes ``model.safetensors`` and ``checkpoint/``; None writes nothing.
    party : PassiveParty, optional
        An already built party (in-process runs share the split model); otherwise ``setup``
        builds it from the settings the active party sends.
    aligner : Aligner, optional
        Aligns the party's own table with the active party's first; each split it aligns
        joins ``tables``.
    """

    def __init__(self, index: int, tables: Mapping[str, torch.Tensor], codec: Channel,
                 directory: Path | None = None, party: PassiveParty | None = None,
                 aligner: Aligner | None = None) -> None:
        self.index = index
        self.tables = dict(tables)
        self.aligner = aligner
        self.codec = codec
        self.directory = directory
        self.party = party
        self.epoch = 0
        self._batch_shape: tuple[int, ...] = (0, 0)  # the last training embedding's, which a gradient must match

    def handle(self, message: Message) -> Message:
        """The reply to ``message``.

        Raises
        ------
        UpdateRejected
            For an unknown kind, a malformed header or payload, or a message out of order.
        """
        if message.kind in ALIGN_KINDS:
            if self.aligner is None:
                raise UpdateRejected(f"party {self.index} holds aligned rows already; it takes no {message.kind!r}")
            reply, aligned = self.aligner.handle(message)
            self.tables.update(aligned)
            return reply
        if message.kind == "hello":
            return Message("reply", {"index": self.index, "features": self._features(),
                                     "rows": {name: len(x) for name, x in self.tables.items()}})
        if message.kind == "setup":
            return self._setup(message.header)
        if message.kind == "stop":
            return Message("reply")
        party = self._party(message.kind)
        if message.kind == "embed":
            return self._embed(party, message)
        if message.kind == "gradient":
            spec = TensorSpec(self._batch_shape)
            grad = self.codec.decode(message.payload)
            spec.check(grad, f"gradient for party {self.index}")
            party.apply_gradient(grad)
            return Message("reply")
        if message.kind == "checkpoint":
            self.epoch = _require(message.header, "epoch", int, "checkpoint")
            if self.directory is not None:
                save_part(self.directory, party.bottom, party.optimizer, {"epoch": self.epoch})
            return Message("reply")
        raise UpdateRejected(f"message kind {message.kind!r} is unknown; expected one of: {', '.join(KINDS)}")

    def _features(self) -> int:
        if not self.tables:
            raise UpdateRejected(f"party {self.index} holds no aligned rows yet; the active party must align first")
        return int(self.tables["train"].shape[1]) if "train" in self.tables else int(
            next(iter(self.tables.values())).shape[1])

    def _party(self, kind: str) -> PassiveParty:
        if self.party is None:
            raise UpdateRejected(f"party {self.index} got {kind!r} before 'setup'; the active party must set up first")
        return self.party

    def _setup(self, header: Mapping[str, Any]) -> Message:
        dims = _require(header, "feature_dims", list, "setup")
        if len(dims) <= self.index or dims[self.index] != self._features():
            raise UpdateRejected(f"setup names feature_dims {dims}, but party {self.index} holds "
                                 f"{self._features()} features; check both parties use the same data split")
        if self.party is None:
            sizes = _require(header, "sizes", dict, "setup")
            model = build_split_model(dims, _require(header, "num_classes", int, "setup"),
                                      _require(header, "seed", int, "setup"), **sizes)
            bottom = model.bottoms[self.index]
            optimizer = sgd([bottom], float(header.get("lr", 0.05)), float(header.get("momentum", 0.0)))
            self.party = PassiveParty(self.index, bottom, self.tables.get("train", torch.zeros(0, dims[self.index])),
                                      optimizer)
        mode = header.get("mode", "train")
        if mode in ("resume", "predict"):
            if self.directory is None:
                raise UpdateRejected(f"party {self.index} has no directory to {mode} from")
            state = load_part(self.directory, self.party.bottom, self.party.optimizer if mode == "resume" else None,
                              checkpoint=mode == "resume")
            self.epoch = int(state.get("epoch", 0))
        expected = header.get("epoch")
        if mode == "resume" and expected != self.epoch:
            raise UpdateRejected(f"party {self.index}'s checkpoint is at epoch {self.epoch}, the active party's at "
                                 f"{expected}; resume every party from the same run")
        return Message("reply", {"epoch": self.epoch})

    def _embed(self, party: PassiveParty, message: Message) -> Message:
        split = _require(message.header, "split", str, "embed")
        train = _require(message.header, "train", bool, "embed")
        if split not in self.tables:
            raise UpdateRejected(f"party {self.index} holds no {split!r} rows (it has {sorted(self.tables)})")
        table = self.tables[split]
        rows = decode_rows(message.payload, len(table), f"batch rows for party {self.index}")
        if train:
            if split != "train":
                raise UpdateRejected(f"party {self.index} trains on 'train' rows only, got {split!r}")
            embedding = party.embed(rows)
            self._batch_shape = tuple(embedding.shape)
        else:
            was_training = party.bottom.training
            party.bottom.eval()
            with torch.no_grad():
                embedding = party.bottom(table[rows])
            party.bottom.train(was_training)
        encoded, _ = self.codec.encode(embedding)
        return Message("reply", {}, encoded)


class PassiveLink:
    """The active party's handle on one passive party: sends, counts, validates.

    Parameters
    ----------
    index : int
        The passive party's number.
    transport : callable
        Delivers a message and returns the reply (:meth:`PassiveService.handle` in one process).
    channel : Channel
        Codec and byte counts of training messages (rows, embeddings, gradients).
    eval_channel : Channel
        Byte counts of inference messages (rows down, embeddings up, nothing else: predictions
        stay with the active party).
    embedding_dim : int
        Width of the passive party's embedding.
    """

    def __init__(self, index: int, transport: Transport, channel: Channel, eval_channel: Channel,
                 embedding_dim: int) -> None:
        self.index = index
        self.transport = transport
        self.channel = channel
        self.eval_channel = eval_channel
        self.embedding_dim = embedding_dim

    def hello(self) -> dict[str, Any]:
        """The passive party's description: ``index``, ``features``, ``rows`` per split."""
        return self.transport(Message("hello")).header

    def setup(self, settings: Mapping[str, Any]) -> int:
        """Send the model and training settings; returns the epoch the party starts from."""
        epoch = self.transport(Message("setup", dict(settings))).header.get("epoch")
        if not isinstance(epoch, int):
            raise UpdateRejected(f"party {self.index} answered setup without an epoch")
        return epoch

    def embedding(self, rows: torch.Tensor, split: str = "train", train: bool = True) -> torch.Tensor:
        """Send row positions down and return the validated embedding, shape (len(rows), embedding_dim)."""
        channel = self.channel if train else self.eval_channel
        payload = channel.send_bytes(encode_rows(rows), "down", f"batch rows for party {self.index}")
        reply = self.transport(Message("embed", {"split": split, "train": train}, payload))
        spec = TensorSpec((len(rows), self.embedding_dim))
        return channel.receive(reply.payload, "up", spec, f"embedding from party {self.index}")

    def gradient(self, grad: torch.Tensor) -> None:
        """Send the gradient of the loss with respect to the last training embedding."""
        encoded, size = self.channel.encode(grad.detach())
        self.channel.count(size, "down")
        self.transport(Message("gradient", {}, encoded))

    def checkpoint(self, epoch: int) -> None:
        """Ask the party to save its checkpoint after ``epoch`` completed epochs."""
        self.transport(Message("checkpoint", {"epoch": epoch}))

    def stop(self) -> None:
        """Tell the party the run is over."""
        self.transport(Message("stop"))


def in_process_link(service: PassiveService, channel: Channel, eval_channel: Channel,
                    embedding_dim: int) -> PassiveLink:
    """A link whose transport is ``service`` itself (the same messages, no network)."""
    return PassiveLink(service.index, service.handle, channel, eval_channel, embedding_dim)

