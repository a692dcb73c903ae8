"""Entity alignment on salted hashes, the insecure fast mode (private set intersection: ``psi``).

Each party hashes its own sample IDs with a salt shared by the parties (SHA-256 of the
salt, the ID's type and its text). In :func:`hash_align` each passive party sends its
digests to the active party, which intersects them with its own, sorts the common digests
to fix one sample order and tells each passive party its rows in that order. A party whose
IDs repeat keeps the first row for each ID; IDs held by only some parties are left out.
This protects raw IDs from being read off the wire, not from a party that can guess and
hash candidate IDs: the salt is known to every party, so a dictionary of likely IDs
recovers every digest's ID. :mod:`fedfleet.vertical.psi` does not have that weakness.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from fedfleet.errors import DataError, UpdateRejected
from fedfleet.vertical.channel import Channel

Key = TypeVar("Key", str, bytes)


class InsecureAlignmentWarning(UserWarning):
    """Alignment on salted hashes: any party can test guessed IDs against every digest."""


def encode_id(entity: Hashable) -> bytes:
    """The bytes an ID is hashed as: its type name and its text, each length-prefixed.

    So ``1`` and ``"1"`` differ, and no two (type, text) pairs share an encoding. A NumPy
    scalar is encoded as the Python value it holds (``np.str_("a")`` as ``"a"``), so an ID
    read back from a party's data file matches the one it was written from.
    """
    if isinstance(entity, np.generic):
        entity = entity.item()
    kind = type(entity).__qualname__.encode()
    text = str(entity).encode()
    return len(kind).to_bytes(4, "big") + kind + len(text).to_bytes(8, "big") + text


def digest_encoded(encoded: Sequence[bytes], salt: str) -> list[str]:
    """Hex SHA-256 digests of the length-prefixed salt and each encoded ID (see :func:`encode_id`)."""
    prefix = len(salt.encode()).to_bytes(4, "big") + salt.encode()
    return [hashlib.sha256(prefix + item).hexdigest() for item in encoded]


def salted_hashes(ids: Sequence[Hashable], salt: str) -> list[str]:
    """Hex SHA-256 digests of the salt and each ID, in order.

    The salt, the ID's type name and its text are length-prefixed, so ``1`` and ``"1"``
    (or a salt/ID boundary shifted by one character) give different digests.
    """
    return digest_encoded([encode_id(entity) for entity in ids], salt)


@dataclass(frozen=True)
class Alignment:
    """The common samples of all parties.

    Attributes
    ----------
    rows : tuple of np.ndarray
        For each party, the row indices (int64) of its table in the common order.
    digests : tuple of str
        The common salted digests, in the common order (with PSI the active party computes
        them from its own IDs; they are never sent).
    party_sizes : tuple of int
        Rows each party held before alignment.
    duplicates : tuple of int
        Rows each party dropped because their ID repeated an earlier row's ID.
    """

    rows: tuple[np.ndarray, ...]
    digests: tuple[str, ...]
    party_sizes: tuple[int, ...]
    duplicates: tuple[int, ...]

    @property
    def overlap(self) -> int:
        """Number of samples all parties share."""
        return len(self.digests)

    def summary(self) -> dict[str, object]:
        """Counts for reports: overlap, and per party its rows, duplicates and unmatched rows."""
        return {
            "overlap": self.overlap,
            "party_rows": list(self.party_sizes),
            "party_duplicates": list(self.duplicates),
            "party_unmatched": [
                size - dup - self.overlap
                for size, dup in zip(self.party_sizes, self.duplicates, strict=True)
            ],
        }


def first_rows(keys: Sequence[Key]) -> dict[Key, int]:
    """The first row of each distinct key, in order of first appearance."""
    first: dict[Key, int] = {}
    for row, key in enumerate(keys):
        first.setdefault(key, row)
    return first


def encode_positions(positions: Sequence[int] | np.ndarray) -> bytes:
    """Row positions as a message: little-endian int64."""
    return np.asarray(positions, dtype="<i8").tobytes()


def decode_positions(message: bytes, rows: int, what: str) -> np.ndarray:
    """The positions in ``message`` (int64), checked to be distinct and within ``rows``.

    Raises
    ------
    UpdateRejected
        If the message is not a whole number of int64 values, or a position repeats or
        lies outside ``0 .. rows - 1``.
    """
    if len(message) % 8:
        raise UpdateRejected(f"{what} has {len(message)} bytes, not a whole number of int64 row positions")
    positions = np.frombuffer(message, dtype="<i8").astype(np.int64)
    if positions.size and (positions.min() < 0 or positions.max() >= rows):
        raise UpdateRejected(f"{what} names rows outside 0..{rows - 1}; the sending party's table differs")
    if len(np.unique(positions)) != len(positions):
        raise UpdateRejected(f"{what} names a row twice; the sending party's alignment is inconsistent")
    return positions


def align_digests(party_digests: Sequence[Sequence[str]]) -> Alignment:
    """Intersect the parties' salted digests (see :func:`salted_hashes`).

    Parameters
    ----------
    party_digests : sequence of sequences of str
        Each party's digests, one per row of its table, active party first.

    Returns
    -------
    Alignment
        The common order and each party's rows in it.

    Raises
    ------
    DataError
        If fewer than two parties are given, or a party shares no sample with the active
        party, or no sample is common to all parties.
    """
    if len(party_digests) < 2:
        raise DataError("alignment needs at least two parties (an active and a passive one)")
    firsts = [first_rows(digests) for digests in party_digests]
    active = set(firsts[0])
    for party, first in enumerate(firsts[1:], start=1):
        if active.isdisjoint(first):
            raise DataError(
                f"party {party} shares no sample ID with the active party; check that both "
                "use the same IDs and the same salt"
            )
    common = sorted(set.intersection(*(set(first) for first in firsts)))
    if not common:
        raise DataError("no sample ID is held by every party; nothing to train on")
    rows = tuple(np.array([first[d] for d in common], dtype=np.int64) for first in firsts)
    return Alignment(
        rows=rows,
        digests=tuple(common),
        party_sizes=tuple(len(digests) for digests in party_digests),
        duplicates=tuple(len(d) - len(f) for d, f in zip(party_digests, firsts, strict=True)),
    )


def align_ids(party_ids: Sequence[Sequence[Hashable]], salt: str) -> Alignment:
    """Hash each party's IDs with ``salt`` and align the digests (see :func:`align_digests`)."""
    return align_digests([salted_hashes(ids, salt) for ids in party_ids])


def hash_align(party_ids: Sequence[Sequence[Hashable]], salt: str, channel: Channel) -> Alignment:
    """Align on salted hashes over ``channel`` (insecure fast mode; warns once per process).

    Each passive party sends its digests (32 bytes per row, in its row order) up; the
    active party aligns them with its own (see :func:`align_digests`) and sends each
    passive party its row positions in the common order (8 bytes per common row) down.

    Raises
    ------
    DataError
        As :func:`align_digests`.
    UpdateRejected
        If a message is malformed.
    """
    warnings.warn(
        "alignment.method=hash is an insecure fast mode: every party can test guessed IDs against "
        "the digests it receives; use alignment.method=psi",
        InsecureAlignmentWarning,
        stacklevel=2,
    )
    if len(party_ids) < 2:
        raise DataError("alignment needs at least two parties (an active and a passive one)")
    received = [salted_hashes(party_ids[0], salt)]
    for party, ids in enumerate(party_ids[1:], start=1):
        blob = b"".join(bytes.fromhex(d) for d in salted_hashes(ids, salt))
        blob = channel.send_bytes(blob, "up", f"digests from party {party}")
        received.append([blob[i : i + 32].hex() for i in range(0, len(blob), 32)])
    alignment = align_digests(received)
    rows = [alignment.rows[0]]
    for party, (ids, own_rows) in enumerate(zip(party_ids[1:], alignment.rows[1:], strict=True), start=1):
        message = channel.send_bytes(encode_positions(own_rows), "down", f"row positions for party {party}")
        rows.append(decode_positions(message, len(ids), f"row positions for party {party}"))
    return Alignment(tuple(rows), alignment.digests, alignment.party_sizes, alignment.duplicates)
