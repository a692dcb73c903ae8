"""Superimposing a mask pattern on images, its inverse, and the mask estimate from averages.

Images are (N, C, H, W) with pixels in [0, 1]; a pattern is (C, H, W).

====================  ==============================  =====================================
mode                  encrypt                         inverse with the pattern
====================  ==============================  =====================================
``add_clip``          clip(x + s·m, 0, 1)             clip(y − s·m, 0, 1) (lossy where clipped)
``multiply``          x ⊙ m                           y ⊘ m where m ≠ 0, else 0
``sign_flip``         0.5 + sgn(m) ⊙ (x − 0.5)        the same map: it is its own inverse
``blend``             (1 − w)·x + w·m                 (y − w·m) / (1 − w)
====================  ==============================  =====================================

``sgn`` maps 0 to +1, so every pattern is a valid sign pattern.
"""

from __future__ import annotations

import torch

from fedfleet.errors import ConfigError

MODES: tuple[str, ...] = ("add_clip", "multiply", "sign_flip", "blend")
_EPS = 1e-6


def _signs(pattern: torch.Tensor) -> torch.Tensor:
    return torch.where(pattern < 0, -1.0, 1.0).to(pattern.dtype)


def _unknown(mode: str) -> ConfigError:
    return ConfigError(f"unknown superimposing mode {mode!r}; choose one of: {', '.join(MODES)}")


def superimpose(
    images: torch.Tensor, pattern: torch.Tensor, mode: str, strength: float = 0.5, weight: float = 0.5
) -> torch.Tensor:
    """Encrypt ``images`` (N, C, H, W) with ``pattern`` (C, H, W) in ``mode``."""
    if mode == "add_clip":
        return (images + strength * pattern).clamp(0.0, 1.0)
    if mode == "multiply":
        return images * pattern
    if mode == "sign_flip":
        return 0.5 + _signs(pattern) * (images - 0.5)
    if mode == "blend":
        return (1.0 - weight) * images + weight * pattern
    raise _unknown(mode)


def invert(
    encrypted: torch.Tensor, pattern: torch.Tensor, mode: str, strength: float = 0.5, weight: float = 0.5
) -> torch.Tensor:
    """Undo :func:`superimpose` given the pattern (exact except where ``add_clip`` clipped)."""
    if mode == "add_clip":
        return (encrypted - strength * pattern).clamp(0.0, 1.0)
    if mode == "multiply":
        safe = torch.where(pattern.abs() > _EPS, pattern, torch.ones_like(pattern))
        return torch.where(pattern.abs() > _EPS, encrypted / safe, torch.zeros_like(encrypted))
    if mode == "sign_flip":
        return 0.5 + _signs(pattern) * (encrypted - 0.5)
    if mode == "blend":
        return (encrypted - weight * pattern) / (1.0 - weight)
    raise _unknown(mode)


def estimate_pattern(
    mean_encrypted: torch.Tensor, mean_clear: torch.Tensor, mode: str, strength: float = 0.5,
    weight: float = 0.5,
) -> torch.Tensor:
    """Estimate a fixed pattern from the mean encrypted image and a mean clear image.

    This is the averaging attack's step: with one mask on many images the pixel-wise
    mean of the ciphertexts is the mask applied to the mean image, which leaks the mask.

    Parameters
    ----------
    mean_encrypted : torch.Tensor
        Pixel-wise mean (C, H, W) of many images encrypted with the same mask.
    mean_clear : torch.Tensor
        Pixel-wise mean (C, H, W) of clear images from a similar distribution.
    """
    if mode == "add_clip":
        return (mean_encrypted - mean_clear) / strength
    if mode == "multiply":
        informative = mean_clear.abs() > _EPS
        safe = torch.where(informative, mean_clear, torch.ones_like(mean_clear))
        return torch.where(informative, mean_encrypted / safe, torch.zeros_like(mean_clear))
    if mode == "sign_flip":
        return _signs((mean_encrypted - 0.5) * (mean_clear - 0.5))
    if mode == "blend":
        if weight == 0:
            return torch.zeros_like(mean_clear)  # the pattern has no effect on the images
        return (mean_encrypted - (1.0 - weight) * mean_clear) / weight
    raise _unknown(mode)
