"""Entity alignment on salted hashes: parties find their common samples without showing raw IDs.

Each party hashes its own sample IDs with a salt shared by the parties (SHA-256 of the
salt, the ID's type and its text) and shares only the digests. The intersection of the
digest sets, sorted by digest, fixes one common sample order; each party learns the rows of its own table in that
order. A party whose IDs repeat keeps the first row for each ID; IDs held by only some
parties are left out. This protects raw IDs from being read off the wire, not from a party
that can guess and hash candidate IDs (use a keyed PSI protocol for that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from fedfleet.errors import DataError


def _encode(entity: Hashable) -> bytes:
    kind = type(entity).__qualname__.encode()
    text = str(entity).encode()
    return len(kind).to_bytes(4, "big") + kind + len(text).to_bytes(8, "big") + text


def salted_hashes(ids: Sequence[Hashable], salt: str) -> list[str]:
    """Hex SHA-256 digests of the salt and each ID, in order.

    The salt, the ID's type name and its text are length-prefixed, so ``1`` and ``"1"``
    (or a salt/ID boundary shifted by one character) give different digests.
    """
    prefix = len(salt.encode()).to_bytes(4, "big") + salt.encode()
    return [hashlib.sha256(prefix + _encode(entity)).hexdigest() for entity in ids]


@dataclass(frozen=True)
class Alignment:
    """The common samples of all parties.

    Attributes
    ----------
    rows : tuple of np.ndarray
        For each party, the row indices (int64) of its table in the common order.
    digests : tuple of str
        The common salted digests, in the common order.
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


def _first_rows(digests: Sequence[str]) -> dict[str, int]:
    first: dict[str, int] = {}
    for row, digest in enumerate(digests):
        first.setdefault(digest, row)
    return first


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
    firsts = [_first_rows(digests) for digests in party_digests]
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
