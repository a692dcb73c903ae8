"""Private set intersection: same alignment as hashing, what each side's messages reveal, size-only mode, errors."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import private_set_intersection.python as psi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.errors import ConfigError, DataError, UpdateRejected
from fedfleet.vertical.alignment import (
    InsecureAlignmentWarning,
    align_ids,
    encode_id,
    encode_positions,
    hash_align,
    salted_hashes,
)
from fedfleet.vertical.channel import Direction, SerializingChannel
from fedfleet.vertical.config import load_vertical_config
from fedfleet.vertical.data import load_vertical
from fedfleet.vertical.psi import PsiActive, PsiPassive, psi_align, psi_overlap_sizes
from fedfleet.vertical.study import align_splits


class RecordingChannel(SerializingChannel):
    """A channel that keeps every byte message with its direction."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[Direction, str, bytes]] = []

    def send_bytes(self, message: bytes, direction: Direction, what: str) -> bytes:
        self.sent.append((direction, what, message))
        return super().send_bytes(message, direction, what)

    def received(self, direction: Direction) -> bytes:
        return b"".join(message for way, _, message in self.sent if way == direction)


def _encodings(key: bytes, ids: Sequence[Hashable]) -> list[bytes]:
    """H(id)^key for each ID: what the holder of ``key`` computes for its own (or guessed) IDs."""
    return list(psi.client.CreateFromKey(key, True).CreateRequest([encode_id(i) for i in ids]).encrypted_elements)


def _double(key: bytes, points: Sequence[bytes]) -> list[bytes]:
    request = psi.Request(reveal_intersection=True)
    request.encrypted_elements.extend(points)
    return list(psi.server.CreateFromKey(key, True).ProcessRequest(request).encrypted_elements)


ID = st.one_of(st.integers(0, 25), st.integers(0, 25).map(str))


@settings(max_examples=25, deadline=None)
@given(active=st.lists(ID, min_size=1, max_size=30), passive=st.lists(ID, max_size=30),
       third=st.lists(ID, max_size=30), seed=st.integers(0, 1000))
def test_psi_aligns_exactly_as_hashing(
    active: list[Hashable], passive: list[Hashable], third: list[Hashable], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    parties = [active, [*passive, *(active[i] for i in rng.permutation(len(active))[:5])], [*third, *active]]
    hashed = align_ids(parties, "salt")
    aligned = psi_align(parties, "salt", SerializingChannel())
    assert aligned.digests == hashed.digests
    assert [rows.tolist() for rows in aligned.rows] == [rows.tolist() for rows in hashed.rows]
    assert (aligned.party_sizes, aligned.duplicates) == (hashed.party_sizes, hashed.duplicates)
    for i, j, k in zip(*aligned.rows, strict=True):  # equal IDs, and 1 never pairs with "1"
        assert type(parties[0][i]) is type(parties[1][j]) is type(parties[2][k])
        assert parties[0][i] == parties[1][j] == parties[2][k]


def test_ints_and_strings_with_the_same_text_are_different_ids() -> None:
    alignment = psi_align([[1, "2", 3], ["1", 2, 3]], "salt", SerializingChannel())
    assert alignment.overlap == 1 and alignment.rows[0].tolist() == [2] and alignment.rows[1].tolist() == [2]


ACTIVE = [f"patient-{i}" for i in range(0, 60)]
PASSIVE = [f"patient-{i}" for i in range(40, 100)]
COMMON, ACTIVE_ONLY, PASSIVE_ONLY = ACTIVE[40:], ACTIVE[:40], PASSIVE[20:]


def _one_pair() -> tuple[PsiActive, PsiPassive, RecordingChannel, np.ndarray]:
    """Run the protocol by hand, keeping both parties' objects (and so their keys) for the checks."""
    channel = RecordingChannel()
    active, passive = PsiActive([encode_id(i) for i in ACTIVE]), PsiPassive(PASSIVE)
    request = channel.send_bytes(active.request(), "down", "request")
    setup, response = (channel.send_bytes(m, "up", "reply") for m in passive.respond(request, "request"))
    match = active.matches(setup, response, "reply")
    order = sorted(match)
    rows = passive.rows(channel.send_bytes(encode_positions([match[i] for i in order]), "down", "positions"),
                        "positions")
    assert [ACTIVE[i] for i in order] == [PASSIVE[j] for j in rows] and sorted(rows.tolist()) == list(range(20))
    return active, passive, channel, rows


def _raw_forms(ids: Sequence[str]) -> list[bytes]:
    """Everything anyone can compute for an ID without a PSI key: its text, encoding, salted digests."""
    digests = salted_hashes(ids, "fedfleet-vertical")
    return [*(i.encode() for i in ids), *(encode_id(i) for i in ids),
            *(d.encode() for d in digests), *(bytes.fromhex(d) for d in digests)]


def test_the_passive_party_cannot_confirm_a_guess_outside_the_intersection() -> None:
    active, passive, channel, _ = _one_pair()
    seen = channel.received("down")
    passive_key = passive._server.GetPrivateKeyBytes()
    # whatever the passive party can compute for a guessed active-only ID, with or without its key
    guesses = [*_raw_forms(ACTIVE_ONLY), *_encodings(passive_key, ACTIVE_ONLY)]
    assert not [g for g in guesses if g in seen]
    # what it received is the active IDs blinded by the active party's key, and 8 bytes per common row
    request = psi.Request()
    request.ParseFromString(channel.sent[0][2])
    assert list(request.encrypted_elements) == _encodings(active._client.GetPrivateKeyBytes(), ACTIVE)
    assert [len(m) for way, _, m in channel.sent if way == "down"][1] == 8 * len(COMMON)


def test_the_active_party_sees_only_blinded_encodings() -> None:
    active, passive, channel, _ = _one_pair()
    seen = channel.received("up")
    active_key, passive_key = active._client.GetPrivateKeyBytes(), passive._server.GetPrivateKeyBytes()
    guesses = [*_raw_forms(PASSIVE_ONLY), *_encodings(active_key, PASSIVE_ONLY)]
    assert not [g for g in guesses if g in seen]
    setup, response = psi.ServerSetup(), psi.Response()
    setup.ParseFromString(channel.sent[1][2])
    response.ParseFromString(channel.sent[2][2])
    # the passive IDs under the passive party's key (sorted, so not even its row order shows) ...
    assert list(setup.raw.encrypted_elements) == sorted(_encodings(passive_key, PASSIVE))
    # ... and the active IDs under both keys, in request order
    assert list(response.encrypted_elements) == _double(passive_key, _encodings(active_key, ACTIVE))


def test_reveal_size_gives_only_the_count() -> None:
    channel = RecordingChannel()
    assert psi_overlap_sizes([ACTIVE, PASSIVE, PASSIVE_ONLY], channel) == [len(COMMON), 0]
    down = [m for way, _, m in channel.sent if way == "down"]
    assert [int.from_bytes(m, "little") for m in down[1::2]] == [len(COMMON), 0]  # request, count, ...
    setup = psi.ServerSetup()
    setup.ParseFromString(channel.sent[1][2])
    assert len(setup.raw.encrypted_elements) == 0 and setup.HasField("gcs")  # no list of encodings
    # the response is shuffled, so the active party cannot tell which of its IDs matched
    active, passive = PsiActive([encode_id(i) for i in ACTIVE], False), PsiPassive(PASSIVE, False)
    request = active.request()
    response = psi.Response()
    response.ParseFromString(passive.respond(request, "request")[1])
    in_order = _double(passive._server.GetPrivateKeyBytes(), _encodings(active._client.GetPrivateKeyBytes(), ACTIVE))
    assert sorted(response.encrypted_elements) == sorted(in_order) and list(response.encrypted_elements) != in_order


def test_reveal_size_is_a_one_line_error_naming_the_count() -> None:
    config = load_vertical_config({"data": {"dataset": "breast_cancer", "overlap": 0.5},
                                   "alignment": {"reveal": "size"}})
    data = load_vertical("breast_cancer", overlap=0.5)
    with pytest.raises(ConfigError, match=r"share \[214\] training samples.*set alignment.reveal=intersection"):
        align_splits(config, data)
    with pytest.raises(ConfigError, match=r"reveal=size needs alignment\.method=psi"):
        load_vertical_config({"alignment": {"reveal": "size", "method": "hash"}})


def test_duplicates_keep_the_first_row_and_are_counted() -> None:
    alignment = psi_align([["a", "b", "a"], ["b", "a", "b", "c"]], "salt", SerializingChannel())
    pairs = dict(zip(alignment.rows[0].tolist(), alignment.rows[1].tolist(), strict=True))
    assert pairs == {0: 1, 1: 0} and alignment.duplicates == (1, 1)


@pytest.mark.parametrize(
    ("parties", "message"),
    [
        ([["a", "b"], ["b"], ["z"]], "party 2 shares no sample ID with the active party"),
        ([["a", "b"], []], "party 1 shares no sample ID"),
        ([["a", "b"], ["a"], ["b"]], "no sample ID is held by every party"),
        ([["a"]], "at least two parties"),
    ],
)
def test_no_overlap_is_a_one_line_error(parties: list[list[str]], message: str) -> None:
    with pytest.raises(DataError, match=message) as error:
        psi_align(parties, "salt", SerializingChannel())
    assert "\n" not in str(error.value)


def test_malformed_messages_are_rejected() -> None:
    active, passive = PsiActive([encode_id(i) for i in ACTIVE]), PsiPassive(PASSIVE)
    with pytest.raises(UpdateRejected, match="request is not a valid PSI message"):
        passive.respond(b"\xff\xff\xff", "request")
    setup, response = passive.respond(active.request(), "request")
    with pytest.raises(UpdateRejected, match="answers 59 IDs, the request had 60"):
        short = psi.Response()
        short.ParseFromString(response)
        del short.encrypted_elements[0]
        active.matches(setup, short.SerializeToString(), "reply")
    bad_point = psi.ServerSetup()
    bad_point.ParseFromString(setup)
    bad_point.raw.encrypted_elements[0] = b"\x02" + b"\xff" * 32  # not a curve point
    with pytest.raises(UpdateRejected, match=r"^reply was refused by the PSI library \(.*point") as error:
        active.matches(bad_point.SerializeToString(), response, "reply")
    assert "\n" not in str(error.value)
    unflagged = psi.Request()
    unflagged.encrypted_elements.extend(psi.Request.FromString(active.request()).encrypted_elements)
    with pytest.raises(UpdateRejected, match="request was refused by the PSI library"):
        passive.respond(unflagged.SerializeToString(), "request")
    for positions, message in [(b"\x00" * 7, "whole number"), (encode_positions([0, 0]), "names a row twice"),
                               (encode_positions([60]), "outside 0..59")]:
        with pytest.raises(UpdateRejected, match=message):
            passive.rows(positions, "positions")


def test_every_message_is_counted_in_the_channel() -> None:
    channel = RecordingChannel()
    psi_align([ACTIVE, PASSIVE], "salt", channel)
    assert channel.bytes_up == len(channel.received("up")) > 2 * 33 * len(PASSIVE)  # setup and response
    assert channel.bytes_down == len(channel.received("down")) > 33 * len(ACTIVE) + 8 * len(COMMON)
    assert (channel.messages_up, channel.messages_down) == (2, 2)


def test_hash_mode_warns_and_counts_its_digests() -> None:
    channel = SerializingChannel()
    with pytest.warns(InsecureAlignmentWarning, match="insecure fast mode"):
        alignment = hash_align([ACTIVE, PASSIVE], "salt", channel)
    assert alignment.overlap == len(COMMON)
    assert (channel.bytes_up, channel.bytes_down) == (32 * len(PASSIVE), 8 * len(COMMON))
