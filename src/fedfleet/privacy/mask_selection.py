"""Choosing an encryption mask: train on encrypted images, score every candidate, pick by rule.

The method (after US20220255724A1): the encrypted-image model learns from images
encrypted with masks of the set, the original-image model from clear images; each
candidate mask encrypts a validation set that both models then recognise, and the
target mask is the one that keeps the encrypted model accurate while the original model
fails. Recognition superimposes the target mask and runs the encrypted model. Because a
mask that can be undone is not private, every candidate is also attacked and the rule
can cap the best attack's reconstruction SSIM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from fedfleet.data.datasets import ArrayDataset
from fedfleet.errors import ConfigError
from fedfleet.privacy.attacks import ATTACKS, run_attack
from fedfleet.privacy.checks import check_images
from fedfleet.privacy.masks import Mask, MaskKey, encrypt_with_any
from fedfleet.privacy.metrics import ssim
from fedfleet.privacy.seeding import Stream, derive_seed
from fedfleet.privacy.selection import SelectionError, least_violating, pick_feasible
from fedfleet.privacy.training import accuracy, predict_proba, train_classifier


@dataclass(frozen=True)
class MaskRule:
    """How the target mask is chosen.

    Attributes
    ----------
    name : {"constrained", "gap"}
        ``constrained``: highest encrypted-model accuracy with original-model accuracy at
        most ``max_original_accuracy``; ``gap``: largest encrypted minus original accuracy.
    max_original_accuracy : float
        Ceiling on the original model's accuracy on encrypted images (``constrained``).
    max_attack_ssim : float or None
        Ceiling on the best attack's reconstruction SSIM (both rules); None: no ceiling.
    """

    name: Literal["constrained", "gap"] = "constrained"
    max_original_accuracy: float = 0.3
    max_attack_ssim: float | None = None


@dataclass(frozen=True)
class MaskScore:
    """One candidate's results on the validation set."""

    key: MaskKey
    encrypted_accuracy: float  # encrypted model on encrypted images
    original_accuracy: float  # original model on encrypted images
    ciphertext_ssim: float  # SSIM between encrypted and clear images (looking at it)
    attack_ssim: dict[str, float] = field(default_factory=dict)
    attack_psnr: dict[str, float] = field(default_factory=dict)

    @property
    def worst_attack_ssim(self) -> float:
        """The most revealing of the ciphertext itself and every attack's reconstruction."""
        return max([self.ciphertext_ssim, *self.attack_ssim.values()])

    def as_row(self) -> dict[str, object]:
        row: dict[str, object] = {
            "mask": self.key.name,
            "family": self.key.family,
            "mode": self.key.mode,
            "encrypted_accuracy": self.encrypted_accuracy,
            "original_accuracy": self.original_accuracy,
            "ciphertext_ssim": self.ciphertext_ssim,
        }
        for kind in self.attack_ssim:
            row[f"{kind}_ssim"] = self.attack_ssim[kind]
            row[f"{kind}_psnr"] = self.attack_psnr[kind]
        row["worst_ssim"] = self.worst_attack_ssim
        return row


def choose_mask(scores: Sequence[MaskScore], rule: MaskRule) -> int:
    """Index of the target mask under ``rule``.

    Raises
    ------
    SelectionError
        When no candidate meets the rule; the message names the closest one.
    """
    if not scores:
        raise SelectionError("the mask set is empty; add candidates")
    ssim_cap = rule.max_attack_ssim
    leak = [0.0 if ssim_cap is None else max(0.0, s.worst_attack_ssim - ssim_cap) for s in scores]
    if rule.name == "constrained":
        objective = [s.encrypted_accuracy for s in scores]
        excess = [max(0.0, s.original_accuracy - rule.max_original_accuracy) for s in scores]
        violation = [a + b for a, b in zip(excess, leak, strict=True)]
        limits = f"original accuracy <= {rule.max_original_accuracy:g}"
    elif rule.name == "gap":
        objective = [s.encrypted_accuracy - s.original_accuracy for s in scores]
        violation = leak
        limits = "the attack ceiling"
    else:
        raise ConfigError(f"unknown mask rule {rule.name!r}; choose 'constrained' or 'gap'")
    if ssim_cap is not None:
        limits += f", attack SSIM <= {ssim_cap:g}"
    chosen = pick_feasible(objective, violation)
    if chosen is None:
        best = scores[least_violating(objective, violation)]
        raise SelectionError(
            f"no mask meets the rule ({limits}); the best available is {best.key.name} "
            f"(encrypted accuracy {best.encrypted_accuracy:.3f}, original accuracy "
            f"{best.original_accuracy:.3f}, worst attack SSIM {best.worst_attack_ssim:.3f}); "
            "relax the rule or add candidates"
        )
    return chosen


class EncryptionMaskSelector:
    """Train the two recognition models, score a mask set and choose the target mask.

    Parameters
    ----------
    keys : sequence of MaskKey
        The candidate masks.
    rule : MaskRule
        The selection rule.
    model : str
        Recognition model name (see :func:`fedfleet.models.build_model`).
    epochs, batch_size, lr : int, int, float
        Training settings of both recognition models.
    encrypted_training : {"shared", "per_mask"}
        ``shared``: one encrypted model trained on images each encrypted with a random
        mask of the set; ``per_mask``: one encrypted model per candidate.
    attacks : sequence of str
        Attacks run against every candidate: any of "average", "linear", "network".
    attack_keys, attack_hidden, attack_epochs : int
        Keys drawn by the inverse attacker, and its network's width and epochs.
    n_examples : int
        Validation images whose encryptions and reconstructions are kept for figures.
    random_state : int
        Seeds training and attacks; each consumer draws from its own stream of it
        (:mod:`fedfleet.privacy.seeding`), so the attacker's keys are independent of
        the candidates' keys drawn from the same job seed.

    Attributes
    ----------
    masks_ : list of Mask
        Regenerated candidate masks.
    original_model_ : nn.Module
        Model trained on clear images.
    encrypted_models_ : list of nn.Module
        Encrypted-image model used for each candidate (the same object when shared).
    scores_ : list of MaskScore
        Per-candidate validation results.
    target_index_ : int
        Index of the chosen mask.
    target_ : Mask
        The chosen mask.
    examples_ : list of dict
        Per candidate, (n_examples, C, H, W) tensors "clear", "encrypted" and one per attack.
    """

    def __init__(
        self,
        keys: Sequence[MaskKey],
        rule: MaskRule | None = None,
        *,
        model: str = "cnn",
        epochs: int = 3,
        batch_size: int = 64,
        lr: float = 1e-3,
        encrypted_training: Literal["shared", "per_mask"] = "shared",
        attacks: Sequence[str] = ("average", "linear"),
        attack_keys: int = 8,
        attack_hidden: int = 256,
        attack_epochs: int = 5,
        n_examples: int = 8,
        random_state: int = 0,
    ) -> None:
        self.keys = keys
        self.rule = rule
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.encrypted_training = encrypted_training
        self.attacks = attacks
        self.attack_keys = attack_keys
        self.attack_hidden = attack_hidden
        self.attack_epochs = attack_epochs
        self.n_examples = n_examples
        self.random_state = random_state

    def _train(
        self, data: ArrayDataset, masks: Sequence[Mask] | None, seed: int, tag: Stream, index: int = 0
    ) -> nn.Module:
        """Train one model; its weights, batch order and mask assignment have their own streams."""
        transform = None
        if masks is not None:
            assignment = derive_seed(seed, Stream.ENCRYPTED_ASSIGNMENT, index)
            transform = encrypt_with_any(masks, torch.Generator().manual_seed(assignment))
        return train_classifier(
            data, self.model, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            transform=transform, seed=derive_seed(seed, tag, index),
        )

    def fit(self, train: ArrayDataset, validation: ArrayDataset, public: ArrayDataset) -> EncryptionMaskSelector:
        """Train both models on ``train``, score candidates on ``validation``, choose the target.

        Parameters
        ----------
        train : ArrayDataset
            The defender's training images.
        validation : ArrayDataset
            Images the candidates are scored (and attacked) on.
        public : ArrayDataset
            Public images: the mixing pool of the ``mix`` family and the attacker's data.

        Raises
        ------
        DataError
            For non-finite pixels or images whose shape differs from the masks'.
        SelectionError
            When no candidate meets the rule (naming the best available).
        """
        unknown = sorted(set(self.attacks) - set(ATTACKS))
        if unknown:
            raise ConfigError(f"unknown attack(s) {unknown}; choose from: {', '.join(ATTACKS)}")
        if self.encrypted_training not in ("shared", "per_mask"):
            raise ConfigError(f"unknown encrypted_training {self.encrypted_training!r}; use shared or per_mask")
        shape = train.input_shape
        check_images(train.x)
        check_images(validation.x, shape)
        check_images(public.x, shape)
        self.masks_ = [Mask.from_key(key, shape, public.x) for key in self.keys]
        seed = self.random_state
        self.original_model_ = self._train(train, None, seed, Stream.ORIGINAL_MODEL)
        if self.encrypted_training == "shared":
            self.encrypted_models_ = [self._train(train, self.masks_, seed, Stream.ENCRYPTED_MODEL)] * len(self.masks_)
        else:
            self.encrypted_models_ = [self._train(train, [m], seed, Stream.ENCRYPTED_MODEL, 1 + i)
                                      for i, m in enumerate(self.masks_)]
        clear, labels = validation.x, validation.y
        shown = slice(0, self.n_examples)
        self.scores_, self.examples_ = [], []
        for mask, encrypted_model in zip(self.masks_, self.encrypted_models_, strict=True):
            encrypted = mask.apply(clear)
            examples = {"clear": clear[shown], "encrypted": encrypted[shown]}
            attack_ssim, attack_psnr = {}, {}
            for kind in self.attacks:
                outcome = run_attack(
                    kind, mask, clear, public.x, n_keys=self.attack_keys, hidden=self.attack_hidden,
                    epochs=self.attack_epochs, random_state=seed,
                )
                attack_ssim[kind], attack_psnr[kind] = outcome.ssim, outcome.psnr
                examples[kind] = outcome.reconstruction[shown]
            self.scores_.append(MaskScore(
                key=mask.key,
                encrypted_accuracy=accuracy(encrypted_model, encrypted, labels),
                original_accuracy=accuracy(self.original_model_, encrypted, labels),
                ciphertext_ssim=float(ssim(encrypted.clamp(0, 1), clear).mean()),
                attack_ssim=attack_ssim,
                attack_psnr=attack_psnr,
            ))
            self.examples_.append(examples)
        self.target_index_ = choose_mask(self.scores_, self.rule or MaskRule())
        self.target_ = self.masks_[self.target_index_]
        return self

    def accuracies(self, data: ArrayDataset) -> list[dict[str, float]]:
        """Per candidate, both models' accuracy on ``data`` encrypted with that candidate."""
        check_images(data.x, self.masks_[0].shape)
        rows = []
        for mask, encrypted_model in zip(self.masks_, self.encrypted_models_, strict=True):
            encrypted = mask.apply(data.x)
            rows.append({"encrypted_accuracy": accuracy(encrypted_model, encrypted, data.y),
                         "original_accuracy": accuracy(self.original_model_, encrypted, data.y)})
        return rows

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        """Encrypt clear images (N, C, H, W) with the target mask."""
        return self.target_.apply(images)

    def predict(self, images: torch.Tensor) -> np.ndarray:
        """Recognise clear images: superimpose the target mask, run the encrypted model."""
        model = self.encrypted_models_[self.target_index_]
        return predict_proba(model, self.transform(images)).argmax(dim=1).numpy()


def clear_baseline(original_model: nn.Module, validation: ArrayDataset) -> dict[str, object]:
    """The no-mask reference row: the original model on clear, fully visible images."""
    clear = validation.x
    clear_accuracy = accuracy(original_model, clear, validation.y)
    visible = float(ssim(clear, clear).mean())
    return {
        "mask": "none (clear images)",
        "encrypted_accuracy": clear_accuracy,
        "original_accuracy": clear_accuracy,
        "ciphertext_ssim": visible,
        "worst_ssim": visible,
    }
