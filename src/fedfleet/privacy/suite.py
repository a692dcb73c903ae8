"""The attack suite a selection rule consults: every shipped attack against one mask at a time.

Selection code reaches the attacks only through :class:`AttackSuite` (``fit`` once, then
``evaluate`` per candidate) and the :class:`AttackFigures` it returns; no attack module imports
selection code. Attackers that do not need the victim's ciphertexts are fitted once in ``fit``:
one inverse attacker per mask family (family, mode and public parameters), one classifier per
invariant and the attacker's clear-image classifier. Attacks that must see the victim's mask
(averaging or matching its ciphertexts, encrypting known plaintexts) run per candidate.

Attacks (``kinds``):

- ``average``: the mean of the ciphertexts leaks a reused mask (:class:`AveragingAttack`);
- ``distribution``: each pixel's ciphertext quantiles matched to the public images' estimate a
  reused mask from ciphertexts alone (:class:`DistributionMatchingAttack`);
- ``linear`` / ``network``: an inverse learned on public images under the attacker's own keys
  of the family (:class:`InverseAttack`);
- ``decoder``: a convolutional decoder trained the same way, on fresh key assignments every
  epoch (:class:`DecoderAttack`);
- ``known_plaintext``: ``known_pairs`` public images the attacker got encrypted under the
  victim's mask solve it per pixel (:class:`KnownPlaintextAttack`);
- ``invariant``: a classifier reads ciphertexts through every key-invariant transform
  (:class:`InvariantClassifierAttack`).

Besides, the attacker's classifier (a logistic regression on clear public images) labels the
ciphertexts clipped to the pixel range and every reconstruction: the attacker-accuracy figures.
And the linkage attack (:func:`linkage_rate`) matches each ciphertext, through the identity and
every key-invariant transform, and each reconstruction to its clear image among all attacked
images: the linkage figures (chance is 1 / N for N attacked images).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from fedfleet.errors import ConfigError
from fedfleet.privacy.attacks import AveragingAttack, InverseAttack
from fedfleet.privacy.checks import check_images
from fedfleet.privacy.decoders import DecoderAttack
from fedfleet.privacy.distribution import DistributionMatchingAttack
from fedfleet.privacy.invariants import INVARIANTS, InvariantClassifierAttack
from fedfleet.privacy.known_plaintext import KnownPlaintextAttack
from fedfleet.privacy.linkage import linkage_rate
from fedfleet.privacy.masks import Mask, MaskKey
from fedfleet.privacy.metrics import psnr, ssim
from fedfleet.privacy.seeding import Stream, stream

SUITE: tuple[str, ...] = ("average", "distribution", "linear", "network", "decoder", "known_plaintext", "invariant")
_INVERSES: tuple[str, ...] = ("linear", "network", "decoder")


@dataclass(frozen=True)
class AttackFigures:
    """What the suite's attacks achieved against one mask on the attacked images."""

    ssim: dict[str, float]  # per reconstructing attack: mean SSIM of its reconstruction to the clear images
    psnr: dict[str, float]  # the same in PSNR (dB)
    accuracy: dict[str, float]  # attacker's accuracy: on "ciphertext", on each reconstruction, per invariant
    reconstructions: dict[str, torch.Tensor]  # per reconstructing attack: (N, C, H, W) estimates
    linkage: dict[str, float] = field(default_factory=dict)  # share re-identified among N: per view (see linkage_views)


def _family(key: MaskKey) -> tuple[object, ...]:
    """What an attacker knows of a key: everything but the seed and the candidate index."""
    return key.family, key.mode, key.strength, key.weight, key.block


class AttackSuite:
    """Run the chosen attacks against candidate masks, fitting what can be fitted once.

    Parameters
    ----------
    kinds : sequence of str
        Attacks to run, any of ``SUITE``.
    n_keys, hidden, epochs : int
        The inverse attacker's own keys per family, and its network's width and epochs.
    decoder_epochs : int
        Training epochs of the convolutional decoder.
    known_pairs : int
        Plaintexts the known-plaintext attacker holds with their ciphertexts (k).
    random_state : int
        Seeds the inverse attackers and the choice of known plaintexts, each from its own stream.

    Attributes
    ----------
    inverses_ : dict
        Per (kind, family, mode, strength, weight, block), the fitted :class:`InverseAttack`
        (``linear``, ``network``) or :class:`DecoderAttack` (``decoder``).
    invariants_ : dict of str to InvariantClassifierAttack
        One classifier per invariant (empty unless ``invariant`` is among ``kinds``).
    reader_ : LogisticRegression
        The attacker's classifier of clear images.
    pairs_ : torch.Tensor
        (known_pairs, C, H, W) the known plaintexts (none without ``known_plaintext``).
    """

    def __init__(
        self,
        kinds: Sequence[str] = SUITE,
        *,
        n_keys: int = 8,
        hidden: int = 256,
        epochs: int = 5,
        decoder_epochs: int = 10,
        known_pairs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.kinds = kinds
        self.n_keys = n_keys
        self.hidden = hidden
        self.epochs = epochs
        self.decoder_epochs = decoder_epochs
        self.known_pairs = known_pairs
        self.random_state = random_state

    def fit(self, public: torch.Tensor, labels: torch.Tensor, targets: Sequence[MaskKey]) -> AttackSuite:
        """Fit the attackers on labelled public images (N, C, H, W) for the masks in ``targets``.

        Raises
        ------
        ConfigError
            For an unknown attack, or more known pairs than public images.
        """
        unknown = sorted(set(self.kinds) - set(SUITE))
        if unknown:
            raise ConfigError(f"unknown attack(s) {unknown}; choose from: {', '.join(SUITE)}")
        if "known_plaintext" in self.kinds and self.known_pairs > len(public):
            raise ConfigError(f"attacks.known_pairs ({self.known_pairs}) exceeds the {len(public)} public images; "
                              "lower it or raise data.public_size")
        self.public_ = check_images(public)
        self.reader_ = LogisticRegression(max_iter=2000).fit(_pixels(self.public_), labels.numpy())
        self.invariants_ = ({name: InvariantClassifierAttack(name).fit(self.public_, labels) for name in INVARIANTS}
                            if "invariant" in self.kinds else {})
        self.pairs_ = self.public_[:0]
        if "known_plaintext" in self.kinds:
            chosen = stream(self.random_state, Stream.KNOWN_PAIRS).choice(len(public), self.known_pairs, replace=False)
            self.pairs_ = self.public_[torch.from_numpy(np.sort(chosen))]
        self.inverses_: dict[tuple[object, ...], InverseAttack | DecoderAttack] = {}
        for kind in (k for k in _INVERSES if k in self.kinds):
            for family in dict.fromkeys(_family(key) for key in targets):
                members = [key for key in targets if _family(key) == family]
                self.inverses_[(kind, *family)] = self._inverse(kind, members).fit(self.public_)
        return self

    def _inverse(self, kind: str, members: Sequence[MaskKey]) -> InverseAttack | DecoderAttack:
        """An unfitted attacker of ``kind`` for the family of ``members``, never drawing their seeds."""
        exclude = [key.seed for key in members]
        if kind == "decoder":
            return DecoderAttack(members[0], n_keys=self.n_keys, epochs=self.decoder_epochs,
                                 random_state=self.random_state, exclude=exclude)
        return InverseAttack(members[0], kind, n_keys=self.n_keys, hidden=self.hidden, epochs=self.epochs,
                             random_state=self.random_state, exclude=exclude)

    def evaluate(self, mask: Mask, clear: torch.Tensor, labels: torch.Tensor) -> AttackFigures:
        """Encrypt ``clear`` (N, C, H, W) with ``mask`` and attack the ciphertexts with every kind.

        Raises
        ------
        ValueError
            When the inverse attackers were not fitted for ``mask``'s family.
        """
        encrypted = mask.apply(clear)
        key = mask.key
        reconstructions: dict[str, torch.Tensor] = {}
        if "average" in self.kinds:
            averaging = AveragingAttack(key.mode, key.strength, key.weight).fit(encrypted, self.public_)
            reconstructions["average"] = averaging.reconstruct(encrypted)
        if "distribution" in self.kinds:
            matching = DistributionMatchingAttack(key.mode, key.strength, key.weight).fit(encrypted, self.public_)
            reconstructions["distribution"] = matching.reconstruct(encrypted)
        for kind in (k for k in _INVERSES if k in self.kinds):
            inverse = self.inverses_.get((kind, *_family(key)))
            if inverse is None:
                raise ValueError(f"no {kind} attacker was fitted for {key.name}; pass its key to fit")
            reconstructions[kind] = inverse.reconstruct(encrypted)
        if "known_plaintext" in self.kinds:
            known = KnownPlaintextAttack(key.mode, key.weight).fit(self.pairs_, mask.apply(self.pairs_))
            reconstructions["known_plaintext"] = known.reconstruct(encrypted)
        truth = labels.numpy()
        accuracy = {"ciphertext": self._read(encrypted.clamp(0.0, 1.0), truth)}
        accuracy |= {kind: self._read(image, truth) for kind, image in reconstructions.items()}
        accuracy |= {name: attack.accuracy(encrypted, labels) for name, attack in self.invariants_.items()}
        return AttackFigures(
            ssim={kind: float(ssim(image, clear).mean()) for kind, image in reconstructions.items()},
            psnr={kind: float(psnr(image, clear).mean()) for kind, image in reconstructions.items()},
            accuracy=accuracy,
            reconstructions=reconstructions,
            linkage=linkage_views(encrypted, clear, reconstructions),
        )

    def _read(self, images: torch.Tensor, truth: np.ndarray) -> float:
        return float((self.reader_.predict(_pixels(images)) == truth).mean())


def linkage_views(
    encrypted: torch.Tensor, clear: torch.Tensor, reconstructions: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Linkage rate of ``encrypted`` to ``clear`` (both (N, C, H, W)) per view.

    Views: ``ciphertext`` (the identity), each key-invariant transform by name, and each
    reconstruction by its attack's name.
    """
    rates = {"ciphertext": linkage_rate(encrypted, clear)}
    rates |= {name: linkage_rate(encrypted, clear, transform) for name, transform in INVARIANTS.items()}
    rates |= {kind: linkage_rate(image, clear) for kind, image in reconstructions.items()}
    return rates


def _pixels(images: torch.Tensor) -> np.ndarray:
    return images.double().flatten(1).numpy()
