"""Entity alignment on salted hashes: duplicates, missing IDs, no overlap, order independence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.errors import DataError
from fedfleet.vertical.alignment import align_ids, encode_id, salted_hashes


def test_digests_hide_raw_ids_and_depend_on_salt() -> None:
    digests = salted_hashes(["alice", "bob"], "s1")
    assert all("alice" not in d and "bob" not in d for d in digests)
    assert salted_hashes(["alice"], "s2") != digests[:1]
    assert salted_hashes(["alice"], "s1") == digests[:1]


def test_missing_ids_are_left_out_and_counted() -> None:
    active = ["a", "b", "c", "d"]
    passive = ["d", "x", "b"]
    alignment = align_ids([active, passive], "salt")
    assert alignment.overlap == 2
    matched = [(active[i], passive[j]) for i, j in zip(*alignment.rows, strict=True)]
    assert sorted(matched) == [("b", "b"), ("d", "d")]
    assert alignment.summary()["party_unmatched"] == [2, 1]


def test_duplicates_keep_the_first_row() -> None:
    active = ["a", "b", "a"]
    passive = ["b", "a", "b", "c"]
    alignment = align_ids([active, passive], "salt")
    assert alignment.overlap == 2
    pairs = {active[i]: (i, j) for i, j in zip(*alignment.rows, strict=True)}
    assert pairs == {"a": (0, 1), "b": (1, 0)}
    assert alignment.duplicates == (1, 1)


def test_party_without_overlap_is_an_error() -> None:
    with pytest.raises(DataError, match="party 2 shares no sample ID"):
        align_ids([["a", "b"], ["b"], ["z"]], "salt")


def test_different_salts_never_match() -> None:
    from fedfleet.vertical.alignment import align_digests

    with pytest.raises(DataError, match="shares no sample ID"):
        align_digests([salted_hashes(["a"], "s1"), salted_hashes(["a"], "s2")])


def test_passive_parties_overlapping_only_pairwise_is_an_error() -> None:
    with pytest.raises(DataError, match="no sample ID is held by every party"):
        align_ids([["a", "b"], ["a"], ["b"]], "salt")


def test_single_party_is_an_error() -> None:
    with pytest.raises(DataError, match="at least two parties"):
        align_ids([["a"]], "salt")


@settings(max_examples=40, deadline=None)
@given(
    ids=st.lists(st.integers(0, 50), min_size=1, max_size=40),
    seed=st.integers(0, 1000),
)
def test_aligned_rows_pair_equal_ids_whatever_the_row_order(ids: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    passive = [ids[i] for i in rng.permutation(len(ids))] + [999]
    alignment = align_ids([ids, passive], "salt")
    assert alignment.overlap == len(set(ids))
    for i, j in zip(*alignment.rows, strict=True):
        assert ids[i] == passive[j]


def test_int_and_str_ids_with_the_same_text_do_not_collide() -> None:
    assert salted_hashes([1], "s") != salted_hashes(["1"], "s")
    assert salted_hashes(["1"], "s") != salted_hashes(["s1"], "")
    assert salted_hashes([1], "s") == salted_hashes([1], "s")


def test_numpy_scalar_ids_encode_as_the_python_values_they_hold() -> None:
    assert encode_id(np.str_("train-000001")) == encode_id("train-000001")
    assert encode_id(np.int64(7)) == encode_id(7) != encode_id("7")
