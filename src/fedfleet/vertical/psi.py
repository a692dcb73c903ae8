"""Entity alignment by ECDH private set intersection (the ``openmined-psi`` library).

Each passive party runs the library's protocol with the active party: the passive party
is the PSI server (secret key ``b``), the active party the client (a fresh secret key
``a`` per passive party). ``H`` hashes an encoded ID (:func:`~fedfleet.vertical.alignment.encode_id`)
to the curve. Every message is bytes through the channel::

    down  request    H(x)^a for each distinct active ID
    up    setup      H(y)^b for each distinct passive ID, sorted (the library's raw server set)
    up    response   H(x)^ab, in request order
          (active: re-encrypts the setup with a, giving H(y)^ab in setup order, and
          matches it against the response: for each common ID, its setup position)
    down  positions  the setup positions of the common samples, in the common order

Without the other party's key nobody can compute that party's encoding of a guessed ID,
so the active party learns only which of its IDs a passive party holds (and how many IDs
that party has), and a passive party only which of its own rows are common (and how many
IDs the active party has). The common order is the order of the salted digests of the
common IDs, which a passive party could compute itself from its common rows. Keys come
from the library's cryptographic random source and never leave the party.

With ``reveal="size"`` (:func:`psi_overlap_sizes`) the server shuffles its response and
sends a compact set (a Golomb-compressed set at a false-positive rate of 1e-9), so the active
party learns only the number of common IDs and sends that number down.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np

from fedfleet.errors import ConfigError, DataError, UpdateRejected
from fedfleet.vertical.alignment import (
    Alignment,
    decode_positions,
    digest_encoded,
    encode_id,
    encode_positions,
    first_rows,
)
from fedfleet.vertical.channel import Channel

SIZE_FPR = 1e-9  # false-positive rate of the compressed set in reveal="size" mode


def _library() -> ModuleType:
    try:
        import private_set_intersection.python as psi
    except ImportError:
        raise ConfigError(
            "alignment.method=psi needs the openmined-psi package: pip install 'fedfleet[privacy]' "
            "(or set alignment.method=hash, an insecure fast mode)"
        ) from None
    return psi


def _parse(kind: Any, blob: bytes, what: str) -> Any:
    message = kind()
    try:
        message.ParseFromString(blob)
    except Exception as exc:  # protobuf raises its own DecodeError for corrupt bytes
        raise UpdateRejected(f"{what} is not a valid PSI message ({exc})") from None
    return message


@contextmanager
def _rejecting(what: str) -> Iterator[None]:
    """Turn the library's errors on a bad message (invalid points, mismatched flags) into one line."""
    try:
        yield
    except RuntimeError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UpdateRejected(f"{what} was refused by the PSI library ({reason})") from None


class PsiPassive:
    """A passive party's side: the PSI server over its distinct IDs.

    Parameters
    ----------
    ids : sequence of hashable
        The party's sample IDs, one per row of its table; a repeated ID keeps its first row.
    reveal_intersection : bool
        False for the size-only protocol.
    """

    def __init__(self, ids: Sequence[Hashable], reveal_intersection: bool = True) -> None:
        self._first = first_rows([encode_id(entity) for entity in ids])
        self._encoded = list(self._first)
        self._reveal = reveal_intersection
        self._server = _library().server.CreateWithNewKey(reveal_intersection)
        self._setup: list[bytes] = []

    @property
    def distinct(self) -> int:
        """Number of distinct IDs the party holds."""
        return len(self._encoded)

    @property
    def reveals(self) -> bool:
        """Whether this server runs the protocol that reveals the intersection (not only its size)."""
        return self._reveal

    def respond(self, request: bytes, what: str) -> tuple[bytes, bytes]:
        """(setup, response) for the active party's ``request``."""
        psi = _library()
        parsed = _parse(psi.Request, request, what)
        structure = psi.DataStructure.RAW if self._reveal else psi.DataStructure.GCS
        with _rejecting(what):
            response = self._server.ProcessRequest(parsed).SerializeToString()
        setup = self._server.CreateSetupMessage(SIZE_FPR, len(parsed.encrypted_elements), self._encoded, structure)
        self._setup = list(setup.raw.encrypted_elements)
        return setup.SerializeToString(), response

    def rows(self, positions: bytes, what: str) -> np.ndarray:
        """The rows (int64) of this party's table at the setup ``positions`` the active party sent."""
        # this party's own H(y)^b in row order: a client holding the server's key computes them
        helper = _library().client.CreateFromKey(self._server.GetPrivateKeyBytes(), True)
        own = helper.CreateRequest(self._encoded).encrypted_elements
        row_of = {point: self._first[encoded] for point, encoded in zip(own, self._encoded, strict=True)}
        chosen = decode_positions(positions, len(self._setup), what)
        return np.array([row_of[self._setup[p]] for p in chosen], dtype=np.int64)


class PsiActive:
    """The active party's side against one passive party: the PSI client with a fresh key.

    Parameters
    ----------
    encoded : sequence of bytes
        The active party's distinct encoded IDs (see :func:`~fedfleet.vertical.alignment.encode_id`).
    reveal_intersection : bool
        False for the size-only protocol.
    """

    def __init__(self, encoded: Sequence[bytes], reveal_intersection: bool = True) -> None:
        self._encoded = list(encoded)
        self._client = _library().client.CreateWithNewKey(reveal_intersection)

    def request(self) -> bytes:
        """The blinded IDs H(x)^a, in the order of ``encoded``."""
        return bytes(self._client.CreateRequest(self._encoded).SerializeToString())

    def _replies(self, setup: bytes, response: bytes, what: str) -> tuple[Any, Any]:
        psi = _library()
        parsed_setup, parsed_response = _parse(psi.ServerSetup, setup, what), _parse(psi.Response, response, what)
        if len(parsed_response.encrypted_elements) != len(self._encoded):
            raise UpdateRejected(
                f"{what} answers {len(parsed_response.encrypted_elements)} IDs, the request had "
                f"{len(self._encoded)}; the passive party's PSI server is out of step"
            )
        return parsed_setup, parsed_response

    def matches(self, setup: bytes, response: bytes, what: str) -> dict[int, int]:
        """For each common ID: its index in ``encoded`` -> its position in the passive party's setup."""
        psi = _library()
        parsed_setup, parsed_response = self._replies(setup, response, what)
        mine = psi.server.CreateFromKey(self._client.GetPrivateKeyBytes(), True)
        resend = psi.Request(reveal_intersection=True)
        resend.encrypted_elements.extend(parsed_setup.raw.encrypted_elements)
        with _rejecting(what):
            doubled = mine.ProcessRequest(resend).encrypted_elements  # H(y)^ab, in setup order
        position = {point: p for p, point in enumerate(doubled)}
        return {
            index: position[point]
            for index, point in enumerate(parsed_response.encrypted_elements)
            if point in position
        }

    def size(self, setup: bytes, response: bytes, what: str) -> int:
        """The number of common IDs (the size-only protocol)."""
        parsed_setup, parsed_response = self._replies(setup, response, what)
        with _rejecting(what):
            return int(self._client.GetIntersectionSize(parsed_setup, parsed_response))


Exchange = Callable[[bytes], tuple[bytes, bytes]]
"""Delivers a PSI request to one passive party and returns its (setup, response), both counted."""


def local_exchange(passive: PsiPassive, party: int, channel: Channel) -> Exchange:
    """An exchange with a passive party in this process: the messages still go through ``channel``."""
    def exchange(request: bytes) -> tuple[bytes, bytes]:
        received = channel.send_bytes(request, "down", f"PSI request to party {party}")
        setup, response = passive.respond(received, f"PSI request to party {party}")
        return (channel.send_bytes(setup, "up", f"PSI setup from party {party}"),
                channel.send_bytes(response, "up", f"PSI response from party {party}"))
    return exchange


def active_encoded(ids: Sequence[Hashable]) -> dict[bytes, int]:
    """The active party's distinct encoded IDs, each with its first row."""
    return first_rows([encode_id(entity) for entity in ids])


def psi_common(encoded: Sequence[bytes], salt: str, exchanges: Sequence[Exchange]) -> tuple[
        list[int], list[list[int]], list[str]]:
    """The active party's side of :func:`psi_align` against every passive party.

    Parameters
    ----------
    encoded : sequence of bytes
        The active party's distinct encoded IDs.
    salt : str
        Orders the common samples (by their salted digests); never sent.
    exchanges : sequence of Exchange
        One per passive party, in party order.

    Returns
    -------
    tuple
        (indices into ``encoded`` in the common order, for each passive party the setup
        positions to send it in that order, the common salted digests in that order).

    Raises
    ------
    DataError
        If a passive party shares no sample with the active party, or no sample is common
        to all parties.
    """
    matches = []
    for party, exchange in enumerate(exchanges, start=1):
        active = PsiActive(encoded)
        match = active.matches(*exchange(active.request()), f"PSI reply from party {party}")
        if not match:
            raise DataError(
                f"party {party} shares no sample ID with the active party; check that both use the same IDs"
            )
        matches.append(match)
    common = set.intersection(*(set(match) for match in matches))
    if not common:
        raise DataError("no sample ID is held by every party; nothing to train on")
    indices = sorted(common)
    digest = dict(zip(indices, digest_encoded([encoded[i] for i in indices], salt), strict=True))
    order = sorted(indices, key=digest.__getitem__)
    return order, [[match[i] for i in order] for match in matches], [digest[i] for i in order]


def psi_size(encoded: Sequence[bytes], exchange: Exchange, party: int) -> int:
    """The number of distinct IDs one passive party shares with the active party (size-only protocol)."""
    active = PsiActive(encoded, False)
    return active.size(*exchange(active.request()), f"PSI reply from party {party}")


def _check_parties(party_ids: Sequence[Sequence[Hashable]]) -> None:
    if len(party_ids) < 2:
        raise DataError("alignment needs at least two parties (an active and a passive one)")


def psi_align(party_ids: Sequence[Sequence[Hashable]], salt: str, channel: Channel) -> Alignment:
    """Align the parties by private set intersection (see the module docstring).

    Parameters
    ----------
    party_ids : sequence of sequences of hashable
        Each party's sample IDs, one per row of its table, active party first.
    salt : str
        Orders the common samples (by their salted digests); never sent.
    channel : Channel
        Carries and counts every message.

    Returns
    -------
    Alignment
        The common order and each party's rows in it.

    Raises
    ------
    DataError
        If fewer than two parties are given, a party shares no sample with the active
        party, or no sample is common to all parties.
    UpdateRejected
        If a message is malformed.
    """
    _check_parties(party_ids)
    first = active_encoded(party_ids[0])
    encoded = list(first)
    passives = [PsiPassive(ids) for ids in party_ids[1:]]
    exchanges = [local_exchange(passive, party, channel) for party, passive in enumerate(passives, start=1)]
    order, positions, digests = psi_common(encoded, salt, exchanges)
    rows = [np.array([first[encoded[i]] for i in order], dtype=np.int64)]
    for party, (passive, chosen) in enumerate(zip(passives, positions, strict=True), start=1):
        what = f"row positions for party {party}"
        rows.append(passive.rows(channel.send_bytes(encode_positions(chosen), "down", what), what))
    return Alignment(
        rows=tuple(rows),
        digests=tuple(digests),
        party_sizes=tuple(len(ids) for ids in party_ids),
        duplicates=(len(party_ids[0]) - len(encoded),
                    *(len(ids) - passive.distinct for ids, passive in zip(party_ids[1:], passives, strict=True))),
    )


def psi_overlap_sizes(party_ids: Sequence[Sequence[Hashable]], channel: Channel) -> list[int]:
    """How many distinct IDs each passive party shares with the active party, and nothing else.

    Each pair runs the size-only protocol; the active party sends the count down
    (8 bytes). The count over all parties at once is not available this way.
    """
    _check_parties(party_ids)
    encoded = list(active_encoded(party_ids[0]))
    sizes = []
    for party, ids in enumerate(party_ids[1:], start=1):
        size = psi_size(encoded, local_exchange(PsiPassive(ids, False), party, channel), party)
        received = channel.send_bytes(size.to_bytes(8, "little"), "down", f"overlap size for party {party}")
        sizes.append(int.from_bytes(received, "little"))
    return sizes
