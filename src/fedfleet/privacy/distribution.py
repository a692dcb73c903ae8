"""Ciphertext-only attack: match each pixel's ciphertext distribution to the public images'.

Threat model: the adversary sees many ciphertexts under one reused mask, knows the superimposing
mode and its public parameters (the family is public), holds public images of the same
distribution, and has no key and no known pair. Every mode maps a pixel's clear value through a
monotone function fixed by the mask at that pixel, so per pixel the ciphertext quantiles are the
clear quantiles pushed through that function (Q_Y(q) = f(Q_X(q)) when f increases,
f(Q_X(1 - q)) when it decreases). Matching the two sets of quantiles estimates f, hence the mask:

- ``add_clip`` (y = clip(x + o, 0, 1)): o = median of Q_Y(q) - Q_X(q) over the levels where
  Q_Y(q) is not clipped; a clipped ciphertext becomes the public median of the values that clip;
- ``multiply`` (y = x · m, x >= 0): sign(m) = sign of the ciphertexts' sum, and
  |m| = ‖Q_Y‖ / ‖Q_X‖ over matched quantiles;
- ``sign_flip`` (y = x or 1 - x): the direction whose matched quantiles lie closer;
- ``blend`` (y = (1 - w)·x + w·m): w·m = mean of Q_Y(q) - (1 - w)·Q_X(q).

Written from the modes' documented formulas (docs/privacy.md), independently of
:mod:`fedfleet.privacy.superimpose` and of the selection code. Per-image keys defeat it: the
ciphertexts of one pixel then mix every key's function, and no single f matches them.
"""

from __future__ import annotations

import torch

DISTRIBUTION_MODES: tuple[str, ...] = ("add_clip", "multiply", "sign_flip", "blend")
_EDGE = 1e-6


class DistributionMatchingAttack:
    """Estimate a reused mask per pixel from ciphertext and public quantiles, then invert it.

    Parameters
    ----------
    mode : str
        One of ``DISTRIBUTION_MODES``.
    strength, weight : float
        The mode's public parameters (``add_clip`` strength, ``blend`` weight).
    levels : int
        Quantile levels matched per pixel.

    Attributes
    ----------
    scale_, shift_ : torch.Tensor
        (C, H, W) the estimated per-pixel map y = scale·x + shift (before any clipping).
    pattern_ : torch.Tensor
        (C, H, W) the estimated mask pattern in the mode's own units.
    """

    def __init__(self, mode: str, strength: float = 0.5, weight: float = 0.5, levels: int = 101) -> None:
        if mode not in DISTRIBUTION_MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(DISTRIBUTION_MODES)}")
        self.mode = mode
        self.strength = strength
        self.weight = weight
        self.levels = levels

    def fit(self, encrypted: torch.Tensor, public: torch.Tensor) -> DistributionMatchingAttack:
        """Match the quantiles of ciphertexts (N, C, H, W) to those of public images (M, C, H, W)."""
        if encrypted.ndim != 4 or public.shape[1:] != encrypted.shape[1:] or len(encrypted) < 2 or len(public) < 2:
            raise ValueError(f"need at least 2 ciphertexts and 2 public images of one (C, H, W) shape, got "
                             f"{tuple(encrypted.shape)} and {tuple(public.shape)}")
        grid = torch.linspace(0.0, 1.0, self.levels, dtype=torch.float64)
        y = torch.quantile(encrypted.double().flatten(1), grid, dim=0)  # (levels, C*H*W)
        x = torch.quantile(public.double().flatten(1), grid, dim=0)
        self.public_ = public.double().flatten(1)
        fitters = {"add_clip": self._fit_offset, "multiply": _fit_factor, "sign_flip": _fit_flip,
                   "blend": self._fit_blend}
        scale, shift, pattern = fitters[self.mode](x, y)
        shape = encrypted.shape[1:]
        self.scale_, self.shift_, self.pattern_ = (t.reshape(shape) for t in (scale, shift, pattern))
        return self

    def reconstruct(self, encrypted: torch.Tensor) -> torch.Tensor:
        """Clear-image estimates of ``encrypted`` (N, C, H, W), clipped to [0, 1]."""
        safe = torch.where(self.scale_.abs() > _EDGE, self.scale_, torch.ones_like(self.scale_))
        estimate = (encrypted.double() - self.shift_) / safe
        if self.mode == "add_clip":
            estimate = self._fill_clipped(encrypted.double(), estimate)
        return estimate.clamp(0.0, 1.0).to(encrypted.dtype)

    def _fit_offset(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inside = (y > _EDGE) & (y < 1 - _EDGE)
        difference = torch.where(inside, y - x, torch.nan)
        offset = torch.nanmedian(difference, dim=0).values
        # every level clipped: the ciphertext's side says the offset's sign, its size is unknown
        offset = torch.where(inside.any(dim=0), offset, torch.where(y[0] >= 1 - _EDGE, 1.0, -1.0).double())
        return torch.ones_like(offset), offset, offset / self.strength

    def _fit_blend(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        keep = 1.0 - self.weight
        term = (y - keep * x).mean(dim=0)
        return torch.full_like(term, keep), term, term / self.weight

    def _fill_clipped(self, encrypted: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
        """Clipped ciphertexts become the public median of the pixel values that would clip there."""
        flat, offset = encrypted.flatten(1), self.shift_.flatten()
        low = torch.where(self.public_ <= -offset, self.public_, torch.nan).nanmedian(dim=0).values
        high = torch.where(self.public_ >= 1 - offset, self.public_, torch.nan).nanmedian(dim=0).values
        low, high = torch.nan_to_num(low, nan=0.0), torch.nan_to_num(high, nan=1.0)
        filled = torch.where(flat <= _EDGE, low, torch.where(flat >= 1 - _EDGE, high, estimate.flatten(1)))
        return filled.reshape(encrypted.shape)


def _fit_factor(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    sign = torch.where(y.sum(dim=0) < 0, -1.0, 1.0).double()
    size = y.norm(dim=0) / x.norm(dim=0).clamp_min(_EDGE)
    factor = sign * size
    return factor, torch.zeros_like(factor), factor


def _fit_flip(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    kept = (y - x).abs().mean(dim=0)
    flipped = (y - (1.0 - x.flip(0))).abs().mean(dim=0)
    sign = torch.where(flipped < kept, -1.0, 1.0).double()
    return sign, 0.5 - 0.5 * sign, sign  # y = s·x + 0.5·(1 - s)
