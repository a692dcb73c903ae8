"""Label leakage through the gradients a passive party receives, and the noise that protects against it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fedfleet.errors import ConfigError
from fedfleet.vertical.config import load_vertical_config
from fedfleet.vertical.data import load_vertical
from fedfleet.vertical.leakage import chance_purity, cluster_gradients, label_leakage, majority_rate, purity
from fedfleet.vertical.protection import GradientNoise
from fedfleet.vertical.study import make_estimator

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "vertical"
PROTECTED = ["protection.gradient_noise=10", "protection.embedding_clip=1"]  # docs/vertical.md's stated setting


def test_purity_and_baselines() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2])
    assert purity(np.array([0, 0, 0, 1, 1, 1]), labels) == pytest.approx(5 / 6)
    assert purity(np.zeros(6, dtype=int), labels) == majority_rate(labels) == 0.5
    assert purity(np.arange(6), labels) == 1.0  # one cluster per sample: why chance is not the majority rate
    assert chance_purity(np.arange(6), labels) == 1.0
    assert chance_purity(np.zeros(6, dtype=int), labels) == 0.5


def test_clustering_finds_opposite_gradient_directions_whatever_their_norms() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    direction = rng.normal(size=8)
    grads = np.where(labels[:, None] == 1, 1.0, -1.0) * direction * rng.uniform(0.01, 10, (200, 1))
    grads += rng.normal(scale=0.1 * np.linalg.norm(direction) / np.sqrt(8), size=grads.shape) * np.abs(grads[:, :1])
    assert purity(cluster_gradients(grads, 2), labels) == 1.0


def _fit(name: str, protection: list[str]) -> tuple[dict[str, float], float]:
    config = load_vertical_config(CONFIGS / f"{name}.yaml", protection)
    data = load_vertical(config.data.dataset, config.data.num_parties, overlap=config.data.overlap, seed=config.seed)
    xs, y, _ = data.train.align(config.alignment.salt, "psi")
    xt, yt, _ = data.test.align(config.alignment.salt, "psi")
    estimator = make_estimator(config, config.model.lipschitz).fit(xs, y, len(data.classes))
    leakage = label_leakage(estimator.received_gradients_[0].numpy(), y.numpy(), len(data.classes))
    return leakage, estimator.score(xt, yt)


@pytest.mark.parametrize(("name", "floor"), [("breast_cancer", 0.75), ("digits", 0.5)])
def test_the_attack_recovers_labels_without_protection_and_falls_to_chance_with_it(name: str, floor: float) -> None:
    open_leak, open_accuracy = _fit(name, [])
    assert open_leak["recovery_rate"] > open_leak["chance_rate"] + 0.25
    assert open_leak["chance_rate"] >= open_leak["majority_rate"] - 1e-9
    protected_leak, protected_accuracy = _fit(name, PROTECTED)
    assert protected_leak["recovery_rate"] < protected_leak["chance_rate"] + 0.05
    # the model still learns under the noise (which is fresh OS randomness each run: hence the loose floor)
    assert open_accuracy > 0.9 and protected_accuracy > floor


def test_noise_has_the_stated_scale_and_is_not_drawn_from_the_seed() -> None:
    grads = torch.randn(4000, 8) * torch.linspace(0.1, 3, 4000)[:, None]
    torch.manual_seed(0)
    first = GradientNoise(2.0)(grads) - grads
    torch.manual_seed(0)
    second = GradientNoise(2.0)(grads) - grads
    ratio = first.pow(2).sum(1).mean() / grads.pow(2).sum(1).mean()
    assert float(ratio) == pytest.approx(4.0, rel=0.05)
    assert not torch.allclose(first, second)  # fresh OS randomness, not the run's seed
    # one level for the batch: the noise norm does not follow each sample's gradient norm
    assert abs(float(torch.corrcoef(torch.stack([first.norm(dim=1), grads.norm(dim=1)]))[0, 1])) < 0.1
    assert torch.equal(GradientNoise(0.0)(grads), grads)
    with pytest.raises(ValueError, match="must be >= 0"):
        GradientNoise(-1.0)


def test_negative_noise_in_the_config_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"protection\.gradient_noise"):
        load_vertical_config(CONFIGS / "digits.yaml", ["protection.gradient_noise=-1"])


def test_clipping_bounds_every_passive_embedding_the_head_uses() -> None:
    from fedfleet.vertical.model import SplitModel, clip_norm

    z = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    assert torch.allclose(clip_norm(z, 1.0), torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]]))
    model = SplitModel([3, 3], 2, embedding_dim=2, interaction_dim=4, top_hidden=4, lipschitz=4.0, embedding_clip=1.0)
    z_active = torch.randn(5, 2)
    far, farther = torch.randn(5, 2) * 100, torch.randn(5, 2) * 1e6
    with torch.no_grad():  # any two passive embeddings end up within 2 * clip: the logits move by at most 2 * L
        change = (model.head(z_active, [far]) - model.head(z_active, [farther])).norm(dim=1)
    assert float(change.max()) <= 2 * model.passive_lipschitz_bound() * 1.0 + 1e-4


def test_large_views_are_attacked_on_a_subset() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 5000)
    grads = np.eye(4)[labels][None].repeat(2, axis=0) + rng.normal(scale=0.05, size=(2, 5000, 4))
    leakage = label_leakage(grads, labels, 3, max_samples=300)
    assert leakage["recovery_rate"] == 1.0 and len(leakage["recovery_by_epoch"]) == 2
    assert leakage["chance_rate"] < 0.45  # chance on 300 shuffled samples, three classes
