"""Attacks on encryption masks: how much of the clear image an adversary can recover.

- :class:`AveragingAttack`: many images are encrypted with one fixed mask, so their
  pixel-wise mean leaks the mask (the weakness Carlini et al. 2021 used against InstaHide);
  the attacker knows the superimposing mode, estimates the pattern and inverts.
- :class:`InverseAttack`: the attacker knows the mask family and mode but not the seed;
  it encrypts public images with masks of that family under its own seeds (drawn from a
  stream independent of the defender's, never the target's seed) and learns a linear
  (ridge) or neural inverse from encrypted to clear images.

Both follow the estimator contract: ``fit`` returns self, learned state ends in ``_``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import torch
from torch import nn

from fedfleet.privacy.checks import check_images
from fedfleet.privacy.masks import Mask, MaskKey, encrypt_with_any, expand_keys
from fedfleet.privacy.metrics import psnr, ssim
from fedfleet.privacy.seeding import Stream, derive_seed, stream
from fedfleet.privacy.superimpose import estimate_pattern, invert
from fedfleet.privacy.training import fit_minibatches

ATTACKS: tuple[str, ...] = ("average", "linear", "network")


class AveragingAttack:
    """Estimate a fixed mask from the mean of many ciphertexts, then invert it.

    Parameters
    ----------
    mode : str
        The superimposing mode (known to the attacker).
    strength, weight : float
        The mode's public parameters.
    """

    def __init__(self, mode: str, strength: float = 0.5, weight: float = 0.5) -> None:
        self.mode = mode
        self.strength = strength
        self.weight = weight

    def fit(self, encrypted: torch.Tensor, public: torch.Tensor) -> AveragingAttack:
        """Estimate the pattern from ciphertexts (N, C, H, W) and clear public images."""
        encrypted = check_images(encrypted)
        public = check_images(public, tuple(encrypted.shape[1:]))
        self.pattern_ = estimate_pattern(
            encrypted.mean(dim=0), public.mean(dim=0), self.mode, self.strength, self.weight
        )
        return self

    def reconstruct(self, encrypted: torch.Tensor) -> torch.Tensor:
        """Clear-image estimates for ``encrypted``, clipped to [0, 1]."""
        encrypted = check_images(encrypted, tuple(self.pattern_.shape))
        return invert(encrypted, self.pattern_, self.mode, self.strength, self.weight).clamp(0.0, 1.0)


class InverseAttack:
    """Learn encrypted -> clear from public images encrypted under the attacker's own keys.

    Parameters
    ----------
    template : MaskKey
        The victim's key; only its family, mode and public parameters are used.
    kind : {"linear", "network"}
        Ridge regression on pixels, or a one-hidden-layer network with sigmoid output.
    n_keys : int
        How many keys of the family the attacker draws.
    ridge : float
        L2 penalty of the linear inverse.
    hidden : int
        Hidden units of the network.
    epochs : int
        Training epochs of the network.
    random_state : int
        Seeds the attacker's keys, mask assignment and network, each from its own stream
        (:mod:`fedfleet.privacy.seeding`), so they are independent of the defender's draws
        under the same seed; the template's own seed is always excluded from the keys.
    exclude : collection of int
        Further seeds never drawn: the other victims when one attacker serves a whole family.

    Attributes
    ----------
    keys_ : list of MaskKey
        The keys the attacker encrypted its public images with.
    """

    def __init__(
        self,
        template: MaskKey,
        kind: str = "linear",
        *,
        n_keys: int = 8,
        ridge: float = 1e-2,
        hidden: int = 256,
        epochs: int = 5,
        random_state: int = 0,
        exclude: Collection[int] = (),
    ) -> None:
        self.template = template
        self.kind = kind
        self.n_keys = n_keys
        self.ridge = ridge
        self.hidden = hidden
        self.epochs = epochs
        self.random_state = random_state
        self.exclude = exclude

    def fit(self, public: torch.Tensor) -> InverseAttack:
        """Train the inverse on ``public`` clear images (N, C, H, W), also the mixing pool."""
        public = check_images(public)
        shape = tuple(public.shape[1:])
        self.keys_ = self.draw_keys()
        masks = [Mask.from_key(key, shape, public) for key in self.keys_]
        assignment = torch.Generator().manual_seed(derive_seed(self.random_state, Stream.ATTACK_ASSIGNMENT))
        encrypted = encrypt_with_any(masks, assignment)(public)
        self.shape_ = shape
        if self.kind == "linear":
            self._fit_linear(encrypted.flatten(1).double(), public.flatten(1).double())
        elif self.kind == "network":
            self._fit_network(encrypted.flatten(1), public.flatten(1))
        else:
            raise ValueError(f"unknown inverse attack kind {self.kind!r}; use 'linear' or 'network'")
        return self

    def draw_keys(self) -> list[MaskKey]:
        """The attacker's keys: ``n_keys`` of the template's family and mode, never a victim's seed."""
        t = self.template
        rng = stream(self.random_state, Stream.ATTACK_KEYS)
        return expand_keys(t.family, t.mode, self.n_keys, rng, strength=t.strength, weight=t.weight,
                           block=t.block, exclude=(t.seed, *self.exclude))

    def _fit_linear(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.input_mean_ = inputs.mean(dim=0)
        self.target_mean_ = targets.mean(dim=0)
        centred = inputs - self.input_mean_
        gram = centred.T @ centred + self.ridge * len(inputs) * torch.eye(inputs.shape[1], dtype=inputs.dtype)
        self.weights_ = torch.linalg.solve(gram, centred.T @ (targets - self.target_mean_))

    def _fit_network(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(derive_seed(self.random_state, Stream.ATTACK_NETWORK, 0))
            width = inputs.shape[1]
            self.network_ = nn.Sequential(
                nn.Linear(width, self.hidden), nn.ReLU(), nn.Linear(self.hidden, width), nn.Sigmoid()
            )
        network = self.network_

        def mse(batch: torch.Tensor) -> torch.Tensor:
            return nn.functional.mse_loss(network(inputs[batch]), targets[batch])

        order = torch.Generator().manual_seed(derive_seed(self.random_state, Stream.ATTACK_NETWORK, 1))
        fit_minibatches(network, len(inputs), mse, epochs=self.epochs, batch_size=64, lr=1e-3, order=order)

    @torch.no_grad()
    def reconstruct(self, encrypted: torch.Tensor) -> torch.Tensor:
        """Clear-image estimates for ``encrypted`` (N, C, H, W), clipped to [0, 1]."""
        encrypted = check_images(encrypted, self.shape_)
        flat = encrypted.flatten(1)
        if self.kind == "linear":
            estimate = (flat.double() - self.input_mean_) @ self.weights_ + self.target_mean_
        else:
            estimate = self.network_(flat)
        return estimate.reshape(encrypted.shape).to(torch.float32).clamp(0.0, 1.0)


@dataclass(frozen=True)
class AttackOutcome:
    """How well one attack recovered the clear images."""

    ssim: float
    psnr: float
    reconstruction: torch.Tensor  # (N, C, H, W) estimates of the attacked images


def run_attack(
    kind: str,
    mask: Mask,
    clear: torch.Tensor,
    public: torch.Tensor,
    *,
    n_keys: int = 8,
    hidden: int = 256,
    epochs: int = 5,
    random_state: int = 0,
) -> AttackOutcome:
    """Encrypt ``clear`` with ``mask``, attack the ciphertexts, and score the reconstruction.

    Parameters
    ----------
    kind : {"average", "linear", "network"}
        Which attack to run.
    mask : Mask
        The victim's mask.
    clear : torch.Tensor
        The victim's images (N, C, H, W) (the attacker sees only their encryptions).
    public : torch.Tensor
        Clear public images available to the attacker.
    """
    encrypted = mask.apply(clear)
    key = mask.key
    if kind == "average":
        reconstruction = (
            AveragingAttack(key.mode, key.strength, key.weight).fit(encrypted, public).reconstruct(encrypted)
        )
    elif kind in ("linear", "network"):
        attack = InverseAttack(key, kind, n_keys=n_keys, hidden=hidden, epochs=epochs,
                               random_state=random_state)
        reconstruction = attack.fit(public).reconstruct(encrypted)
    else:
        raise ValueError(f"unknown attack {kind!r}; choose one of: {', '.join(ATTACKS)}")
    return AttackOutcome(
        ssim=float(ssim(reconstruction, clear).mean()),
        psnr=float(psnr(reconstruction, clear).mean()),
        reconstruction=reconstruction,
    )
