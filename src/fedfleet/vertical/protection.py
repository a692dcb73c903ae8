"""Label protection: Gaussian noise on the gradients the active party sends to passive parties.

Gradients with respect to the passive embeddings cluster by label (see
:mod:`fedfleet.vertical.leakage`), so the active party adds isotropic Gaussian noise to each
batch of them before sending. For a batch of gradient rows ``g_i`` of dimension ``d`` the
noise is ``n_i ~ N(0, s^2 I_d)`` with ``s = scale * rms / sqrt(d)`` and ``rms`` the root
mean square of the rows' norms, so ``E ||n_i||^2 = scale^2 * mean_i ||g_i||^2``: ``scale``
is the ratio of noise norm to gradient norm (the inverse of a signal-to-noise ratio). One
noise level per batch, so the noise does not carry each sample's gradient norm. This is not
a differential-privacy guarantee (no clipping bound, no privacy accountant); its effect is
measured by the attack instead.

The noise generator is seeded from the operating system's random source, never from the
run's seed: passive parties know the configuration and could otherwise regenerate the noise
and subtract it. Runs with noise are therefore not bit-for-bit reproducible.
"""

from __future__ import annotations

import math
import secrets

import torch


class GradientNoise:
    """Adds noise of ``scale`` times the batch's RMS gradient norm to a batch of gradients.

    Parameters
    ----------
    scale : float
        Noise norm / gradient norm (>= 0); 0 sends the gradients unchanged.
    """

    def __init__(self, scale: float) -> None:
        if scale < 0:
            raise ValueError(f"gradient noise scale must be >= 0, got {scale}")
        self.scale = scale
        self._generator = torch.Generator().manual_seed(secrets.randbits(63))

    def __call__(self, grad: torch.Tensor) -> torch.Tensor:
        """The protected gradients, same shape as ``grad`` (batch, dim)."""
        if self.scale == 0 or grad.numel() == 0:
            return grad
        rms = grad.pow(2).sum(dim=1).mean().sqrt()
        noise = torch.randn(grad.shape, generator=self._generator, dtype=grad.dtype)
        return grad + noise * (self.scale * rms / math.sqrt(grad.shape[1]))
