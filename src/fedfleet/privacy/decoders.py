"""Learned decoder across keys: a small convolutional network trained to undo a whole mask family.

Threat model: as for :class:`~fedfleet.privacy.attacks.InverseAttack` — the adversary knows the
family, mode and public parameters but not the seed, and holds public images of the same
distribution. It draws its own keys of the family (never a victim's seed), encrypts its public
images with them (a fresh key assignment every epoch) and trains a convolutional decoder from
ciphertext to clear image. Two coordinate channels let the decoder learn position-dependent
structure (a family's tiles, a data set's background), so it can read the key off the image
where the family has few keys or the images have a predictable layout.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch import nn

from fedfleet.privacy.attacks import InverseAttack
from fedfleet.privacy.checks import check_images
from fedfleet.privacy.masks import Mask, MaskKey, encrypt_with_any
from fedfleet.privacy.seeding import Stream, derive_seed
from fedfleet.privacy.training import fit_minibatches


def _decoder(channels: int, width: int) -> nn.Module:
    """(N, C + 2, H, W) ciphertext with coordinates -> (N, C, H, W) pixels in (0, 1)."""
    return nn.Sequential(
        nn.Conv2d(channels + 2, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, channels, 1), nn.Sigmoid(),
    )


class DecoderAttack:
    """Train a convolutional decoder on public images under the attacker's own keys of a family.

    Parameters
    ----------
    template : MaskKey
        The victim's key; only its family, mode and public parameters are used.
    n_keys : int
        How many keys of the family the attacker draws.
    width : int
        Channels of the decoder's hidden layers.
    epochs : int
        Training epochs.
    random_state : int
        Seeds the attacker's keys (as :class:`InverseAttack` draws them), the key assignment, the
        decoder's weights and the batch order.
    exclude : collection of int
        Further seeds never drawn (the other victims of the family).

    Attributes
    ----------
    keys_ : list of MaskKey
        The keys the attacker encrypted its public images with.
    decoder_ : nn.Module
        The trained decoder.
    """

    def __init__(
        self,
        template: MaskKey,
        *,
        n_keys: int = 8,
        width: int = 32,
        epochs: int = 10,
        random_state: int = 0,
        exclude: Collection[int] = (),
    ) -> None:
        self.template = template
        self.n_keys = n_keys
        self.width = width
        self.epochs = epochs
        self.random_state = random_state
        self.exclude = exclude

    def fit(self, public: torch.Tensor) -> DecoderAttack:
        """Train on ``public`` clear images (N, C, H, W), also the ``mix`` family's pool."""
        public = check_images(public)
        self.shape_ = tuple(public.shape[1:])
        self.keys_ = InverseAttack(self.template, n_keys=self.n_keys, random_state=self.random_state,
                                   exclude=self.exclude).draw_keys()
        masks = [Mask.from_key(key, self.shape_, public) for key in self.keys_]
        assignment = torch.Generator().manual_seed(derive_seed(self.random_state, Stream.ATTACK_NETWORK, 2))
        encrypt = encrypt_with_any(masks, assignment)
        with torch.random.fork_rng():
            torch.manual_seed(derive_seed(self.random_state, Stream.ATTACK_NETWORK, 3))
            self.decoder_ = _decoder(self.shape_[0], self.width)
        decoder, encrypted = self.decoder_, [public]

        def encrypt_afresh() -> None:  # a new key assignment every epoch
            encrypted[0] = self._inputs(encrypt(public))

        def mse(batch: torch.Tensor) -> torch.Tensor:
            return nn.functional.mse_loss(decoder(encrypted[0][batch]), public[batch])

        order = torch.Generator().manual_seed(derive_seed(self.random_state, Stream.ATTACK_NETWORK, 4))
        fit_minibatches(decoder, len(public), mse, epochs=self.epochs, batch_size=64, lr=3e-3, order=order,
                        before_epoch=encrypt_afresh)
        return self

    @torch.no_grad()
    def reconstruct(self, encrypted: torch.Tensor) -> torch.Tensor:
        """Clear-image estimates for ``encrypted`` (N, C, H, W), in [0, 1]."""
        encrypted = check_images(encrypted, self.shape_)
        return self.decoder_(self._inputs(encrypted)).to(torch.float32)

    def _inputs(self, encrypted: torch.Tensor) -> torch.Tensor:
        height, width = encrypted.shape[2:]
        rows = torch.linspace(-1.0, 1.0, height).view(1, 1, height, 1).expand(len(encrypted), 1, height, width)
        cols = torch.linspace(-1.0, 1.0, width).view(1, 1, 1, width).expand(len(encrypted), 1, height, width)
        return torch.cat([encrypted.to(torch.float32), rows, cols], dim=1)
