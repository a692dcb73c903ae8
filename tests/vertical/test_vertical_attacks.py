"""Attacks: exact noise norms, PGD stays in its ball and hurts, every certified sample survives PGD."""

from __future__ import annotations

import pytest
import torch

from fedfleet.vertical.attacks import Corruption, gaussian_noise, pgd, scaled, zeros
from fedfleet.vertical.certify import certified_accuracy, certified_mask
from fedfleet.vertical.data import load_vertical
from fedfleet.vertical.trainer import VerticalClassifier


@pytest.fixture(scope="module")
def trained() -> tuple[VerticalClassifier, list[torch.Tensor], torch.Tensor]:
    data = load_vertical("digits", max_train=600)
    xs, y, _ = data.train.align("salt")
    xt, yt, _ = data.test.align("salt")
    estimator = VerticalClassifier(embedding_dim=8, bottom_hidden=32, interaction_dim=16, top_hidden=16,
                                   epochs=8, batch_size=32, lipschitz=4.0).fit(xs, y, 10)
    return estimator, xt, yt


def test_gaussian_noise_has_exactly_the_requested_norm() -> None:
    z = torch.randn(10, 6)
    moved = gaussian_noise(z, 2.5, torch.Generator().manual_seed(0))
    torch.testing.assert_close((moved - z).norm(dim=1), torch.full((10,), 2.5))


def test_scaled_and_zeros() -> None:
    z = torch.randn(3, 4)
    torch.testing.assert_close(scaled(z, 3.0), 3 * z)
    assert torch.equal(zeros(z), torch.zeros(3, 4))


def embedded(trained):  # type: ignore[no-untyped-def]
    """The trained split model, the test set's active and passive embeddings, and its labels."""
    estimator, xt, yt = trained
    with torch.no_grad():
        z_active, z_passive = estimator.model_.embed(xt)
    return estimator.model_, z_active, z_passive, yt


def test_pgd_stays_in_the_ball_and_beats_random_noise(trained) -> None:  # type: ignore[no-untyped-def]
    model, z_active, z_passive, yt = embedded(trained)
    radius = 0.5 * float(z_passive.norm(dim=1).median())
    attacked = pgd(model, z_active, [z_passive], yt, 1, radius, steps=10)
    assert float((attacked - z_passive).norm(dim=1).max()) <= radius * (1 + 1e-5)
    noisy = gaussian_noise(z_passive, radius, torch.Generator().manual_seed(0))
    with torch.no_grad():
        accuracy_pgd = (model.head(z_active, [attacked]).argmax(1) == yt).float().mean()
        accuracy_noise = (model.head(z_active, [noisy]).argmax(1) == yt).float().mean()
    assert accuracy_pgd < accuracy_noise


@pytest.mark.parametrize("relative_radius", [0.1, 0.2])
def test_certified_samples_survive_pgd_at_their_radius(trained, relative_radius: float) -> None:  # type: ignore[no-untyped-def]
    estimator, xt, yt = trained
    model = estimator.model_
    with torch.no_grad():
        z_active, z_passive = model.embed(xt)
        logits = model.head(z_active, [z_passive])
    radius = relative_radius * float(z_passive.norm(dim=1).median())
    certified = certified_mask(logits, yt, estimator.certified_bound_, radius)
    assert float(certified.double().mean()) == certified_accuracy(logits, yt, estimator.certified_bound_, radius)
    assert int(certified.sum()) > 0.3 * len(yt) * (0.1 / relative_radius)
    attacked = pgd(model, z_active, [z_passive], yt, 1, radius, steps=20)
    with torch.no_grad():
        survives = model.head(z_active, [attacked]).argmax(1) == yt
    assert bool(survives[certified].all()), f"{int((certified & ~survives).sum())} certified samples broken"
    # the check has teeth: this PGD breaks correctly classified samples, and a certificate
    # from a bound 10x too small claims samples that it breaks
    assert int(((logits.argmax(1) == yt) & ~survives).sum()) > 0
    overclaimed = certified_mask(logits, yt, estimator.certified_bound_ / 10, radius)
    assert int((overclaimed & ~survives).sum()) > 0


def test_certified_accuracy_shrinks_with_radius_and_needs_a_correct_prediction() -> None:
    logits = torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 1.5]])
    y = torch.tensor([0, 0, 0])
    assert certified_accuracy(logits, y, 1.0, 0.0) == pytest.approx(2 / 3)
    assert certified_accuracy(logits, y, 1.0, 1.0) == pytest.approx(1 / 3)  # margin 3 > sqrt(2)
    assert certified_accuracy(logits, y, 1.0, 3.0) == 0.0


def test_corruption_kinds() -> None:
    z = torch.randn(4, 6)
    generator = torch.Generator().manual_seed(0)
    noisy = Corruption(1.0, "noise", 2.0).apply(z, generator)
    torch.testing.assert_close((noisy - z).norm(dim=1), 2.0 * z.norm(dim=1))
    torch.testing.assert_close(Corruption(1.0, "scale", 3.0).apply(z, generator), 3 * z)
    assert torch.equal(Corruption(1.0, "zeros").apply(z, generator), torch.zeros_like(z))
    with pytest.raises(ValueError, match="fraction"):
        Corruption(1.5)


def test_pgd_restarts_are_never_weaker_than_their_first_run(trained) -> None:  # type: ignore[no-untyped-def]
    model, z_active, z_passive, yt = embedded(trained)
    radius = 0.5 * float(z_passive.norm(dim=1).median())

    def accuracy(restarts: int) -> float:
        attacked = pgd(model, z_active, [z_passive], yt, 1, radius, steps=10,
                       generator=torch.Generator().manual_seed(3), restarts=restarts)
        assert torch.all((attacked - z_passive).norm(dim=1) <= radius * (1 + 1e-5))
        with torch.no_grad():
            return float((model.head(z_active, [attacked]).argmax(1) == yt).float().mean())

    assert accuracy(5) <= accuracy(1)
