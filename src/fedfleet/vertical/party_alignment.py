"""Entity alignment between party processes: each party holds only its own IDs.

The active party drives the same protocols as :func:`~fedfleet.vertical.psi.psi_align` and
:func:`~fedfleet.vertical.alignment.hash_align`, one split at a time, as protocol messages
(:mod:`fedfleet.vertical.protocol`); the passive party answers with
:class:`AlignmentService`:

=====================================  =================================  ==============================
active -> passive                      header                             passive -> active
=====================================  =================================  ==============================
``align`` (PSI request H(x)^a)         ``split``, ``method: psi``,        setup H(y)^b then response
                                       ``reveal`` (bool)                  H(x)^ab (header: ``setup`` bytes)
``align`` (nothing)                    ``split``, ``method: hash``,       its salted digests, row order
                                       ``salt``
``positions`` (int64)                  ``split``                          -- (header: ``rows`` kept)
``size`` (int64 count)                 ``split``                          --
=====================================  =================================  ==============================

PSI payloads are the library's serialized protobuf messages, parsed with its own parsers.
With PSI the passive party learns which of its rows are common (the ``positions``) or, with
``reveal=False``, only how many (``size``); it never receives an ID, a digest or the active
party's key. Every payload is counted in the active party's alignment channel, as in one process.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fedfleet.errors import ConfigError, UpdateRejected
from fedfleet.vertical.alignment import (
    InsecureAlignmentWarning,
    align_digests,
    decode_positions,
    encode_positions,
    salted_hashes,
)
from fedfleet.vertical.channel import Channel
from fedfleet.vertical.config import AlignmentConfig
from fedfleet.vertical.protocol import Message, PassiveLink
from fedfleet.vertical.psi import PsiPassive, active_encoded, psi_common, psi_size

ALIGNMENT_FILE = "alignment.safetensors"  # each party's own rows per split, in the common order


def save_rows(directory: Path | None, rows: Mapping[str, np.ndarray]) -> None:
    """Add a party's aligned rows (int64 per split) to ``directory/alignment.safetensors``."""
    if directory is None:
        return
    path = directory / ALIGNMENT_FILE
    try:
        kept = load_file(str(path)) if path.exists() else {}
    except SafetensorError:
        kept = {}  # a damaged file is rewritten from this alignment
    kept |= {split: torch.from_numpy(r.astype(np.int64)) for split, r in rows.items()}
    save_file(kept, str(path))


def _header(message: Message, key: str, kind: type) -> Any:
    value = message.header.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise UpdateRejected(f"{message.kind} header needs {key!r} ({kind.__name__}), got {value!r}")
    return value


def _payload(message: Message) -> bytes:
    if not isinstance(message.payload, bytes):
        raise UpdateRejected(f"{message.kind} payload must be bytes, got {type(message.payload).__name__}")
    return message.payload


class AlignmentService:
    """A passive party's side of alignment, over its own unaligned table.

    Parameters
    ----------
    index : int
        The party's number (1..).
    ids : mapping of str to sequence
        Its sample IDs per split, one per row of ``tables``.
    tables : mapping of str to torch.Tensor
        Its features per split in its own row order.
    directory : Path, optional
        Where it writes ``alignment.safetensors`` (its rows in the common order).
    """

    def __init__(self, index: int, ids: Mapping[str, Sequence[Any]], tables: Mapping[str, torch.Tensor],
                 directory: Path | None = None) -> None:
        self.index = index
        self.ids = dict(ids)
        self.tables = dict(tables)
        self.directory = directory
        self.rows: dict[str, np.ndarray] = {}
        self._pending: dict[str, PsiPassive | int] = {}  # a split's PSI server, or its row count (hash)

    def handle(self, message: Message) -> tuple[Message, dict[str, torch.Tensor]]:
        """The reply to an alignment message and the splits it aligned (features in the common order)."""
        split = _header(message, "split", str)
        if split not in self.ids:
            raise UpdateRejected(f"party {self.index} holds no {split!r} rows (it has {sorted(self.ids)})")
        what = f"{message.kind} message for party {self.index}"
        if message.kind == "align":
            return self._align(message, split, what), {}
        pending = self._pending.pop(split, None)
        if pending is None:
            raise UpdateRejected(f"party {self.index} got {message.kind!r} for {split!r} before 'align'")
        if message.kind == "size":
            if not isinstance(pending, PsiPassive) or pending.reveals or len(_payload(message)) != 8:
                raise UpdateRejected(f"{what} must follow a size-only PSI and carry one int64 count")
            return Message("reply"), {}
        if isinstance(pending, PsiPassive):
            if not pending.reveals:
                raise UpdateRejected(f"{what} follows a size-only PSI; the intersection was not to be revealed")
            rows = pending.rows(_payload(message), what)
        else:
            rows = decode_positions(_payload(message), pending, what)
        self.rows[split] = rows
        save_rows(self.directory, self.rows)
        return Message("reply", {"rows": len(rows)}), {split: self.tables[split][torch.from_numpy(rows)]}

    def _align(self, message: Message, split: str, what: str) -> Message:
        method = message.header.get("method")
        if method == "hash":
            digests = salted_hashes(self.ids[split], _header(message, "salt", str))
            self._pending[split] = len(digests)
            return Message("reply", {}, b"".join(bytes.fromhex(d) for d in digests))
        if method != "psi":
            raise UpdateRejected(f"{what} names method {method!r}; expected 'psi' or 'hash'")
        server = PsiPassive(self.ids[split], _header(message, "reveal", bool))
        setup, response = server.respond(_payload(message), what)
        self._pending[split] = server
        return Message("reply", {"setup": len(setup)}, setup + response)


def _exchange(link: PassiveLink, split: str, reveal: bool, channel: Channel) -> Any:
    def exchange(request: bytes) -> tuple[bytes, bytes]:
        payload = channel.send_bytes(request, "down", f"PSI request to party {link.index}")
        reply = link.transport(Message("align", {"split": split, "method": "psi", "reveal": reveal}, payload))
        blob, cut = _payload(reply), reply.header.get("setup")
        if not isinstance(cut, int) or not 0 <= cut <= len(blob):
            raise UpdateRejected(f"party {link.index}'s PSI reply names setup length {cut!r} "
                                 f"outside its {len(blob)}-byte payload")
        return (channel.send_bytes(blob[:cut], "up", f"PSI setup from party {link.index}"),
                channel.send_bytes(blob[cut:], "up", f"PSI response from party {link.index}"))
    return exchange


def _send_positions(link: PassiveLink, split: str, positions: Sequence[int] | np.ndarray, channel: Channel) -> None:
    what = f"row positions for party {link.index}"
    reply = link.transport(Message("positions", {"split": split},
                                   channel.send_bytes(encode_positions(positions), "down", what)))
    if reply.header.get("rows") != len(positions):
        raise UpdateRejected(f"party {link.index} kept {reply.header.get('rows')} {split} rows, "
                             f"not the {len(positions)} common ones")


def align_with_peers(links: Sequence[PassiveLink], split: str, ids: Sequence[Any], settings: AlignmentConfig,
                     channel: Channel) -> np.ndarray:
    """Align ``split`` with every passive party at ``links``; returns the active party's rows (int64).

    Raises
    ------
    ConfigError
        With ``reveal=size``, after the size-only protocol (the counts are known, not the rows).
    DataError
        If a party shares no sample with the active party, or none is common to all.
    UpdateRejected
        If a message is malformed.
    """
    if settings.method == "hash":
        warnings.warn("alignment.method=hash is an insecure fast mode: every party can test guessed IDs against "
                      "the digests it receives; use alignment.method=psi", InsecureAlignmentWarning, stacklevel=2)
        received = [salted_hashes(ids, settings.salt)]
        for link in links:
            reply = link.transport(Message("align", {"split": split, "method": "hash", "salt": settings.salt}))
            blob = channel.send_bytes(_payload(reply), "up", f"digests from party {link.index}")
            received.append([blob[i : i + 32].hex() for i in range(0, len(blob), 32)])
        alignment = align_digests(received)
        for link, rows in zip(links, alignment.rows[1:], strict=True):
            _send_positions(link, split, rows, channel)
        return alignment.rows[0]
    first = active_encoded(ids)
    encoded = list(first)
    if settings.reveal == "size":
        sizes = []
        for link in links:
            size = psi_size(encoded, _exchange(link, split, False, channel), link.index)
            what = f"overlap size for party {link.index}"
            link.transport(Message("size", {"split": split}, channel.send_bytes(size.to_bytes(8, "little"), "down",
                                                                                 what)))
            sizes.append(size)
        raise ConfigError(f"alignment.reveal=size: the passive parties share {sizes} {split} samples with the active "
                          "party, but only the counts were revealed, so there is nothing to train on; "
                          "set alignment.reveal=intersection")
    order, positions, _ = psi_common(encoded, settings.salt,
                                     [_exchange(link, split, True, channel) for link in links])
    for link, chosen in zip(links, positions, strict=True):
        _send_positions(link, split, chosen, channel)
    return np.array([first[encoded[i]] for i in order], dtype=np.int64)
