"""Known-plaintext attack: k (clear, encrypted) pairs of one reused mask recover every other image.

Threat model: the adversary holds ``k`` images it knows in the clear together with their
ciphertexts under the defender's mask (a leaked pair, a probe image it got encrypted), and
ciphertexts of other images under the same mask. It knows the superimposing mode and its public
parameters (``strength``, ``weight``), as the family is public, but not the key. Written from the
modes' documented formulas (docs/privacy.md), independently of :mod:`fedfleet.privacy.superimpose`.

Per pixel it solves for what the mask contributes:

- ``add_clip`` (y = clip(x + o, 0, 1)): the offset o = y - x from pairs where y was not
  clipped; where every pair clipped, the tightest bound the clipped pairs give.
- ``multiply`` (y = x · m): m = y / x from pairs with x > 0.
- ``sign_flip`` (y = 0.5 + s · (x - 0.5)): s = sign((y - 0.5)(x - 0.5)) from pairs with x ≠ 0.5.
- ``blend`` (y = (1 - w)·x + w·m): the term w·m = y - (1 - w)·x.
- ``affine`` (the mode unknown, k ≥ 2): y = a·x + b fitted per pixel by least squares.

Pixels no pair informs keep a neutral guess (offset 0, factor 1, sign +1). It does not model
per-image keys (a fresh mask per image defeats it: the pairs say nothing about other masks).
"""

from __future__ import annotations

import torch

KNOWN_PLAINTEXT_MODES: tuple[str, ...] = ("add_clip", "multiply", "sign_flip", "blend", "affine")
_TINY = 1e-6


class KnownPlaintextAttack:
    """Fit a reused mask's per-pixel effect from known pairs, then decrypt other ciphertexts.

    Parameters
    ----------
    mode : str
        One of ``KNOWN_PLAINTEXT_MODES``.
    weight : float
        The blend weight (``blend`` only; public with the family).
    """

    def __init__(self, mode: str, weight: float = 0.5) -> None:
        if mode not in KNOWN_PLAINTEXT_MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(KNOWN_PLAINTEXT_MODES)}")
        self.mode = mode
        self.weight = weight

    def fit(self, clear: torch.Tensor, encrypted: torch.Tensor) -> KnownPlaintextAttack:
        """Learn the mask's effect from ``k`` pairs, both (k, C, H, W) in [0, 1]."""
        if clear.shape != encrypted.shape or clear.ndim != 4 or len(clear) == 0:
            raise ValueError(f"pairs must be two (k, C, H, W) batches of one shape, got {tuple(clear.shape)} "
                             f"and {tuple(encrypted.shape)}")
        if self.mode == "affine" and len(clear) < 2:
            raise ValueError("the mode-free affine fit needs at least 2 pairs")
        x, y = clear.double(), encrypted.double()
        fitters = {"add_clip": _fit_offset, "multiply": _fit_factor, "sign_flip": _fit_sign,
                   "blend": self._fit_blend, "affine": _fit_affine}
        self.scale_, self.shift_ = fitters[self.mode](x, y)
        return self

    def reconstruct(self, encrypted: torch.Tensor) -> torch.Tensor:
        """Estimated clear images of ``encrypted`` (N, C, H, W), clipped to [0, 1]."""
        safe = torch.where(self.scale_.abs() > _TINY, self.scale_, torch.ones_like(self.scale_))
        return ((encrypted.double() - self.shift_) / safe).clamp(0, 1).to(encrypted.dtype)

    def _fit_blend(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = 1.0 - self.weight
        return torch.full_like(x[0], keep), (y - keep * x).mean(dim=0)


def _fit_offset(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    inside = (y > _TINY) & (y < 1 - _TINY)
    difference = y - x
    count = inside.sum(dim=0)
    exact = torch.where(inside, difference, 0.0).sum(dim=0) / count.clamp_min(1)
    above = torch.where(y >= 1 - _TINY, difference, -torch.inf).amax(dim=0)  # o >= 1 - x where clipped at 1
    below = torch.where(y <= _TINY, difference, torch.inf).amin(dim=0)  # o <= -x where clipped at 0
    bound = torch.where(torch.isfinite(above), above, torch.where(torch.isfinite(below), below, 0.0))
    return torch.ones_like(exact), torch.where(count > 0, exact, bound)


def _fit_factor(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    informative = x > _TINY
    count = informative.sum(dim=0)
    ratio = torch.where(informative, y / torch.where(informative, x, 1.0), 0.0).sum(dim=0) / count.clamp_min(1)
    return torch.where(count > 0, ratio, 1.0), torch.zeros_like(ratio)


def _fit_sign(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    votes = torch.sign((y - 0.5) * (x - 0.5)).sum(dim=0)
    sign = torch.where(votes < 0, -1.0, 1.0).to(x.dtype)
    return sign, 0.5 - 0.5 * sign  # y = s·x + 0.5·(1 - s)


def _fit_affine(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean_x, mean_y = x.mean(dim=0), y.mean(dim=0)
    spread = ((x - mean_x) ** 2).sum(dim=0)
    slope = torch.where(spread > _TINY, ((x - mean_x) * (y - mean_y)).sum(dim=0) / spread.clamp_min(_TINY), 1.0)
    return slope, mean_y - slope * mean_x
