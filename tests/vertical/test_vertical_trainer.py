"""Split training: parity with unsplit training, determinism, accounting, failure modes."""

from __future__ import annotations

import pytest
import torch
from sklearn.base import clone

from fedfleet.errors import UpdateRejected
from fedfleet.vertical.attacks import Corruption
from fedfleet.vertical.data import load_vertical
from fedfleet.vertical.trainer import VerticalClassifier, fit_unsplit

SMALL = {"embedding_dim": 4, "bottom_hidden": 16, "interaction_dim": 8, "top_hidden": 8, "epochs": 2,
         "batch_size": 32}


@pytest.fixture(scope="module")
def digits() -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor], torch.Tensor]:
    data = load_vertical("digits", num_parties=3, max_train=400, max_test=200)
    xs, y, _ = data.train.align("salt")
    xt, yt, _ = data.test.align("salt")
    return xs, y, xt, yt


def _max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    pairs = zip(a.state_dict().items(), b.state_dict().items(), strict=True)
    assert all(name_a == name_b for (name_a, _), (name_b, _) in pairs)
    values = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return max(float((x - y).abs().max()) for x, y in values)


@pytest.mark.parametrize("channel", ["identity", "serializing"])
@pytest.mark.parametrize("lipschitz", [2.0, None])
def test_split_training_matches_unsplit_training(digits, channel: str, lipschitz: float | None) -> None:  # type: ignore[no-untyped-def]
    xs, y, _, _ = digits
    estimator = VerticalClassifier(**SMALL, lipschitz=lipschitz, channel=channel, random_state=3).fit(xs, y, 10)
    reference = fit_unsplit(estimator, torch.cat(xs, dim=1), y, [x.shape[1] for x in xs], 10)
    untrained = fit_unsplit(VerticalClassifier(**{**SMALL, "epochs": 1}, lipschitz=lipschitz, random_state=3),
                            torch.cat(xs, dim=1), y, [x.shape[1] for x in xs], 10)
    assert _max_difference(estimator.model_, reference) <= 1e-6
    assert _max_difference(estimator.model_, untrained) > 1e-3  # training moved the parameters


def test_same_seed_same_model_other_seed_other_model(digits) -> None:  # type: ignore[no-untyped-def]
    xs, y, _, _ = digits
    first = VerticalClassifier(**SMALL, random_state=1).fit(xs, y, 10)
    again = VerticalClassifier(**SMALL, random_state=1).fit(xs, y, 10)
    other = VerticalClassifier(**SMALL, random_state=2).fit(xs, y, 10)
    assert _max_difference(first.model_, again.model_) == 0.0
    untimed = [{k: v for k, v in h.items() if k != "wall_time_s"} for h in first.history_]
    assert untimed == [{k: v for k, v in h.items() if k != "wall_time_s"} for h in again.history_]
    assert _max_difference(first.model_, other.model_) > 1e-3


def test_learns_and_reports_history_bytes_and_bound(digits) -> None:  # type: ignore[no-untyped-def]
    xs, y, xt, yt = digits
    estimator = VerticalClassifier(**{**SMALL, "epochs": 8}, lipschitz=3.0, random_state=0)
    assert estimator.fit(xs, y, 10, eval_set=(xt, yt)) is estimator
    assert estimator.score(xt, yt) > 0.6
    assert [h["epoch"] for h in estimator.history_] == list(range(1, 9))
    assert estimator.certified_bound_ == pytest.approx(3.0, rel=1e-5)
    batches = 8 * -(-len(y) // SMALL["batch_size"])
    raw_bytes = 8 * len(y) * SMALL["embedding_dim"] * 4  # float32 embeddings, per passive party
    channel = estimator.channel_
    assert channel.messages_up == 2 * batches and channel.messages_down == 4 * batches  # + batch rows down
    row_bytes = 8 * 8 * len(y) * 2  # int64 row positions of every batch, to each passive party
    assert channel.bytes_up == channel.bytes_down - row_bytes > 2 * raw_bytes
    assert estimator.predict(xt).shape == yt.shape


def test_corruption_strikes_about_the_requested_fraction(digits) -> None:  # type: ignore[no-untyped-def]
    xs, y, _, _ = digits
    estimator = VerticalClassifier(**{**SMALL, "epochs": 10}, corruption=Corruption(0.3), random_state=0)
    estimator.fit(xs, y, 10)
    batches = 10 * -(-len(y) // SMALL["batch_size"])
    assert 0.15 * batches < estimator.corrupted_batches_ < 0.45 * batches


def test_zero_fraction_corruption_equals_honest_training(digits) -> None:  # type: ignore[no-untyped-def]
    xs, y, _, _ = digits
    honest = VerticalClassifier(**SMALL, random_state=0).fit(xs, y, 10)
    harmless = VerticalClassifier(**SMALL, corruption=Corruption(0.0), random_state=0).fit(xs, y, 10)
    assert _max_difference(honest.model_, harmless.model_) == 0.0 and harmless.corrupted_batches_ == 0


def test_nan_embedding_from_a_passive_party_is_rejected(digits) -> None:  # type: ignore[no-untyped-def]
    xs, y, _, _ = digits
    poisoned = [xs[0], xs[1].clone(), xs[2]]
    poisoned[1][5, 0] = float("nan")
    with pytest.raises(UpdateRejected, match="embedding from party 1 contains NaN"):
        VerticalClassifier(**SMALL).fit(poisoned, y, 10)


def test_corrupt_party_must_be_passive(digits) -> None:  # type: ignore[no-untyped-def]
    xs, y, _, _ = digits
    with pytest.raises(ValueError, match="corrupt_party"):
        VerticalClassifier(**SMALL, corrupt_party=3).fit(xs, y, 10)


def test_a_clone_trains_to_the_same_model(digits) -> None:  # type: ignore[no-untyped-def]
    xs, y, _, _ = digits
    first = VerticalClassifier(**SMALL, random_state=5).fit(xs, y, 10)
    second = clone(first).fit(xs, y, 10)
    assert _max_difference(first.model_, second.model_) == 0.0
