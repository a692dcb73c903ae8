"""Checking the certified bound: empirical Lipschitz ratios and certified accuracy.

The bound covers the map from the passive parties' embeddings (concatenated) to the
logits with the active embedding held fixed. The checks run on a float64 copy of the
model, so rounding cannot blur a violation.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch

from fedfleet.vertical.model import SplitModel


def _as_function(
    model: SplitModel, z_active: torch.Tensor, sizes: Sequence[int]
) -> Callable[[torch.Tensor], torch.Tensor]:
    def logits(z_passive: torch.Tensor) -> torch.Tensor:
        # z_passive: (batch, sum(sizes)) -> (batch, classes)
        return model.head(z_active, torch.split(z_passive, list(sizes), dim=1))

    return logits


def pair_ratios(
    model: SplitModel, z_active: torch.Tensor, z: torch.Tensor, z_other: torch.Tensor, sizes: Sequence[int]
) -> torch.Tensor:
    """|f(z) - f(z')| / |z - z'| per row, f the logits as a function of the passive embeddings."""
    f = _as_function(model, z_active, sizes)
    return (f(z) - f(z_other)).norm(dim=1) / (z - z_other).norm(dim=1)


def empirical_lipschitz(
    model: SplitModel,
    z_active: torch.Tensor,
    z_passive: Sequence[torch.Tensor],
    steps: int = 50,
    seed: int = 0,
) -> dict[str, float]:
    """Largest observed ratio on random and on adversarial pairs, next to the certified bound.

    Random pairs: each real passive embedding paired with itself plus Gaussian noise of a
    log-uniform radius (1e-3 to 10 times its norm). Adversarial pairs: both points of each
    pair moved by Adam for ``steps`` steps to maximise the ratio.

    Returns
    -------
    dict
        ``certified_bound``, ``max_ratio_random``, ``max_ratio_adversarial`` and
        ``bound_holds`` (1.0 if neither maximum exceeds the bound, else 0.0).
    """
    exact = copy.deepcopy(model).double().eval()
    for parameter in exact.parameters():
        parameter.requires_grad_(False)
    sizes = [z.shape[1] for z in z_passive]
    anchor = z_active.detach().double()
    z = torch.cat([z.detach() for z in z_passive], dim=1).double()
    generator = torch.Generator().manual_seed(seed)
    scale = z.norm(dim=1, keepdim=True).clamp_min(1e-6)
    radii = scale * 10 ** (torch.rand((len(z), 1), generator=generator, dtype=torch.float64) * 4 - 3)
    noise = torch.randn(z.shape, generator=generator, dtype=torch.float64)
    z_random = z + radii * noise / noise.norm(dim=1, keepdim=True)
    with torch.no_grad():
        random_max = float(pair_ratios(exact, anchor, z, z_random, sizes).max())
    first = z.clone().requires_grad_(True)
    second = (z + 0.01 * scale * noise / noise.norm(dim=1, keepdim=True)).requires_grad_(True)
    optimizer = torch.optim.Adam([first, second], lr=0.05 * float(scale.median()))
    adversarial_max = 0.0
    for _ in range(steps):
        ratios = pair_ratios(exact, anchor, first, second, sizes)
        adversarial_max = max(adversarial_max, float(ratios.detach().max()))
        optimizer.zero_grad()
        (-ratios.sum()).backward()
        optimizer.step()
    bound = exact.passive_lipschitz_bound()
    return {
        "certified_bound": bound,
        "max_ratio_random": random_max,
        "max_ratio_adversarial": adversarial_max,
        "bound_holds": float(max(random_max, adversarial_max) <= bound),
    }


def certified_mask(logits: torch.Tensor, y: torch.Tensor, bound: float, radius: float) -> torch.Tensor:
    """Per sample: classified correctly and provably unchanged by any passive-embedding
    perturbation of L2 norm <= ``radius``.

    If the logits are ``bound``-Lipschitz, each difference of two logits is at most
    ``sqrt(2) * bound``-Lipschitz, so a top-two margin above ``sqrt(2) * bound * radius``
    cannot be overturned.
    """
    classes = logits.shape[1]
    return pairwise_certified_mask(logits, y, torch.full((classes, classes), math.sqrt(2) * bound), radius)


def certified_accuracy(logits: torch.Tensor, y: torch.Tensor, bound: float, radius: float) -> float:
    """Share of samples that :func:`certified_mask` certifies."""
    return float(certified_mask(logits, y, bound, radius).double().mean())


def pairwise_certified_mask(logits: torch.Tensor, y: torch.Tensor, pair_bounds: torch.Tensor,
                            radius: float) -> torch.Tensor:
    """Per sample: classified correctly, and for every other class ``j`` the margin over ``j``
    exceeds ``pair_bounds[predicted, j] * radius`` (``pair_bounds`` from
    :meth:`~fedfleet.vertical.model.SplitModel.passive_pair_bounds`).

    Each logit difference has its own Lipschitz constant, so this certifies at least every
    sample :func:`certified_mask` does with the global bound.
    """
    predicted = logits.argmax(dim=1)
    margins = logits.gather(1, predicted[:, None]).double() - logits.double()
    needed = pair_bounds.double()[predicted] * radius
    needed.scatter_(1, predicted[:, None], -torch.inf)  # no margin over the predicted class itself
    return (predicted == y) & (margins > needed).all(dim=1)


def pairwise_certified_accuracy(logits: torch.Tensor, y: torch.Tensor, pair_bounds: torch.Tensor,
                                radius: float) -> float:
    """Share of samples that :func:`pairwise_certified_mask` certifies."""
    return float(pairwise_certified_mask(logits, y, pair_bounds, radius).double().mean())
