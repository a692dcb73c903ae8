"""Attacks by a passive party on its own embedding, at test time and during training.

Test-time attacks replace one passive party's embedding ``z`` (batch, dim) by a perturbed
one and measure the active party's accuracy: Gaussian noise of a given L2 norm per sample,
a worst-case L2-bounded perturbation found by projected gradient ascent (PGD) on the
loss, all zeros, or ``z`` scaled by a factor. :class:`Corruption` is the training-time
attack: the party sends corrupted embeddings for a fraction of batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from fedfleet.vertical.model import SplitModel


def _per_sample_norm(z: torch.Tensor) -> torch.Tensor:
    return z.flatten(1).norm(dim=1, keepdim=True).clamp_min(1e-12)  # (batch, 1)


def gaussian_noise(z: torch.Tensor, radius: float, generator: torch.Generator) -> torch.Tensor:
    """``z`` plus Gaussian noise rescaled to L2 norm exactly ``radius`` per sample."""
    noise = torch.randn(z.shape, generator=generator, dtype=z.dtype)
    return z + radius * noise / _per_sample_norm(noise)


def scaled(z: torch.Tensor, factor: float) -> torch.Tensor:
    """``z`` multiplied by ``factor``."""
    return z * factor


def zeros(z: torch.Tensor) -> torch.Tensor:
    """An all-zero embedding of the same shape."""
    return torch.zeros_like(z)


def _with_party(z_passive: Sequence[torch.Tensor], party: int, z: torch.Tensor) -> list[torch.Tensor]:
    """Passive embeddings with passive party ``party`` (1-based) replaced by ``z``."""
    replaced = list(z_passive)
    replaced[party - 1] = z
    return replaced


def pgd(
    model: SplitModel,
    z_active: torch.Tensor,
    z_passive: Sequence[torch.Tensor],
    y: torch.Tensor,
    party: int,
    radius: float,
    steps: int = 10,
    generator: torch.Generator | None = None,
    restarts: int = 1,
) -> torch.Tensor:
    """Worst-case embedding for passive party ``party`` within an L2 ball of ``radius``.

    Projected gradient ascent on the cross-entropy loss, normalised steps of size
    ``2.5 * radius / steps`` from a random start inside the ball (Madry et al. 2018); with
    ``restarts`` > 1, per sample the worst of that many runs from fresh random starts (one that
    misclassifies first, then the highest loss).

    Returns
    -------
    torch.Tensor
        The perturbed embedding of party ``party``, same shape as ``z_passive[party - 1]``.
    """
    clean = z_passive[party - 1].detach()
    if radius == 0:
        return clean
    generator = generator or torch.Generator().manual_seed(0)
    worst, worst_score = clean, torch.full((len(clean),), -torch.inf, dtype=clean.dtype)
    for _ in range(restarts):
        candidate = _pgd_run(model, z_active, z_passive, y, party, clean, radius, steps, generator)
        with torch.no_grad():
            logits = model.head(z_active, _with_party(z_passive, party, candidate))
            loss = nn.functional.cross_entropy(logits, y, reduction="none")
            score = torch.where(logits.argmax(dim=1) != y, torch.inf, loss)
        better = score > worst_score
        worst = torch.where(better[:, None], candidate, worst)
        worst_score = torch.where(better, score, worst_score)
    return worst


def _pgd_run(model: SplitModel, z_active: torch.Tensor, z_passive: Sequence[torch.Tensor], y: torch.Tensor,
             party: int, clean: torch.Tensor, radius: float, steps: int,
             generator: torch.Generator) -> torch.Tensor:
    delta = gaussian_noise(torch.zeros_like(clean), radius, generator) * 0.5
    step = 2.5 * radius / steps
    for _ in range(steps):
        delta.requires_grad_(True)
        logits = model.head(z_active, _with_party(z_passive, party, clean + delta))
        (grad,) = torch.autograd.grad(nn.functional.cross_entropy(logits, y), delta)
        with torch.no_grad():
            delta = delta + step * grad / _per_sample_norm(grad)
            delta = delta * (radius / _per_sample_norm(delta)).clamp(max=1.0)
    return (clean + delta).detach()


@dataclass(frozen=True)
class Corruption:
    """A training-time attack: corrupt the outgoing embedding on a fraction of batches.

    Attributes
    ----------
    fraction : float
        Probability that a batch is corrupted.
    kind : {"noise", "scale", "zeros"}
        Add Gaussian noise of norm ``magnitude`` x the embedding's norm, multiply the
        embedding by ``magnitude``, or send zeros.
    magnitude : float
        Relative noise norm or scale factor.
    """

    fraction: float
    kind: Literal["noise", "scale", "zeros"] = "noise"
    magnitude: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.fraction <= 1:
            raise ValueError(f"corruption fraction must be in [0, 1], got {self.fraction}")

    def strikes(self, generator: torch.Generator) -> bool:
        """Draw whether the current batch is corrupted."""
        return bool(torch.rand((), generator=generator) < self.fraction)

    def apply(self, z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The corrupted version of the embedding ``z`` (batch, dim)."""
        if self.kind == "noise":
            direction = gaussian_noise(torch.zeros_like(z), 1.0, generator)  # unit norm per sample
            return z + self.magnitude * _per_sample_norm(z) * direction
        if self.kind == "scale":
            return scaled(z, self.magnitude)
        return zeros(z)
