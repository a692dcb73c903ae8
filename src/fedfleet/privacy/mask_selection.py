"""Choosing an encryption mask: train on encrypted images, score every candidate, pick by rule.

The method (after US20220255724A1): the encrypted-image model learns from images
encrypted with masks of the set, the original-image model from clear images; each
candidate mask encrypts a validation set that both models then recognise, and the
target mask is the one that keeps the encrypted model accurate while the original model
fails. Recognition superimposes the target mask and runs the encrypted model.

Because a mask that can be undone is not private, the rule also takes the worst case over
the attack suite (:mod:`fedfleet.privacy.suite`): by default a candidate qualifies only if
no attack reconstructs its images above an SSIM cap and no attacker classifier labels them
above an accuracy cap. The original-image side is the best of several independently trained
clear-image models, fed ciphertexts clipped to the pixel range.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from fedfleet.data.datasets import ArrayDataset
from fedfleet.errors import ConfigError
from fedfleet.privacy.checks import check_images
from fedfleet.privacy.keys import PerImageMask
from fedfleet.privacy.mask_rule import MaskChoice, MaskRule, MaskScore, choose_mask, select_mask
from fedfleet.privacy.masks import Mask, MaskKey, encrypt_with_any
from fedfleet.privacy.metrics import ssim
from fedfleet.privacy.seeding import Stream, derive_seed
from fedfleet.privacy.selection import SelectionError
from fedfleet.privacy.suite import SUITE, AttackSuite
from fedfleet.privacy.training import accuracy, predict_proba, train_classifier

__all__ = ["EncryptionMaskSelector", "MaskChoice", "MaskRule", "MaskScore", "choose_mask", "clear_baseline",
           "clipped", "select_mask"]


def clipped(images: torch.Tensor) -> torch.Tensor:
    """Images clipped to the valid pixel range [0, 1]: what a clear-image model is fed."""
    return images.clamp(0.0, 1.0)


class EncryptionMaskSelector:
    """Train the recognition models, score and attack a mask set, and choose the target mask.

    Parameters
    ----------
    keys : sequence of MaskKey
        The candidate masks.
    rule : MaskRule
        The selection rule.
    model : str
        Encrypted-image model name (see :func:`fedfleet.models.build_model`).
    original_models : sequence of str
        Architectures of the clear-image (original) models, each trained with its own seed;
        a candidate's original accuracy is the best of them.
    epochs, batch_size, lr : int, int, float
        Training settings of every recognition model.
    encrypted_training : {"shared", "per_mask"}
        ``shared``: one encrypted model trained on images each encrypted with a random
        mask of the set; ``per_mask``: one encrypted model per candidate. Either way the
        deployed model (``model_``) is trained on the chosen mask alone.
    per_image : bool
        False: each candidate is one mask for every image (the patent's shared mask); True:
        each candidate is a family with a fresh master secret and every image gets its own
        mask of it (:class:`~fedfleet.privacy.keys.PerImageMask`).
    attacks : sequence of str
        Attacks of the suite run against every candidate (:data:`fedfleet.privacy.suite.SUITE`).
    attack_keys, attack_hidden, attack_epochs, decoder_epochs, known_pairs : int
        Keys drawn by the inverse attacker, its network's width and epochs, the
        convolutional decoder's epochs, and the known-plaintext attacker's pairs.
    n_examples : int
        Validation images whose encryptions and reconstructions are kept for figures.
    random_state : int
        Seeds training and attacks; each consumer draws from its own stream of it
        (:mod:`fedfleet.privacy.seeding`), so the attacker's keys are independent of
        the candidates' keys drawn from the same job seed.

    Attributes
    ----------
    masks_ : list of Mask
        Regenerated candidate masks (:class:`PerImageMask` with ``per_image``).
    original_models_ : list of nn.Module
        Models trained on clear images, one per ``original_models`` entry.
    original_model_ : nn.Module
        The first of them (the clear-image reference).
    encrypted_models_ : list of nn.Module
        Encrypted-image model used for each candidate (the same object when shared).
    suite_ : AttackSuite
        The fitted attack suite.
    scores_ : list of MaskScore
        Per-candidate validation results.
    target_index_ : int
        Index of the chosen mask.
    target_ : Mask
        The chosen mask.
    model_ : nn.Module
        The encrypted-image model trained on the chosen mask: the one to deploy.
    qualified_ : bool
        Whether the chosen mask meets the rule (False: it is the least bad).
    warning_ : str or None
        Why the chosen mask does not qualify; None when it does.
    examples_ : list of dict
        Per candidate, (n_examples, C, H, W) tensors "clear", "encrypted" and one per
        reconstructing attack.
    """

    def __init__(
        self,
        keys: Sequence[MaskKey],
        rule: MaskRule | None = None,
        *,
        model: str = "cnn",
        original_models: Sequence[str] = ("cnn", "mlp"),
        epochs: int = 3,
        batch_size: int = 64,
        lr: float = 1e-3,
        encrypted_training: Literal["shared", "per_mask"] = "shared",
        per_image: bool = False,
        attacks: Sequence[str] = SUITE,
        attack_keys: int = 8,
        attack_hidden: int = 256,
        attack_epochs: int = 5,
        decoder_epochs: int = 10,
        known_pairs: int = 1,
        n_examples: int = 8,
        random_state: int = 0,
    ) -> None:
        self.keys = keys
        self.rule = rule
        self.model = model
        self.original_models = original_models
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.encrypted_training = encrypted_training
        self.per_image = per_image
        self.attacks = attacks
        self.attack_keys = attack_keys
        self.attack_hidden = attack_hidden
        self.attack_epochs = attack_epochs
        self.decoder_epochs = decoder_epochs
        self.known_pairs = known_pairs
        self.n_examples = n_examples
        self.random_state = random_state

    def _train(
        self, data: ArrayDataset, masks: Sequence[Mask] | None, seed: int, tag: Stream, index: int = 0,
        model: str | None = None,
    ) -> nn.Module:
        """Train one model; its weights, batch order and mask assignment have their own streams."""
        transform = None
        if masks is not None:
            assignment = derive_seed(seed, Stream.ENCRYPTED_ASSIGNMENT, index)
            transform = encrypt_with_any(masks, torch.Generator().manual_seed(assignment))
        return train_classifier(
            data, model or self.model, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            transform=transform, seed=derive_seed(seed, tag, index),
        )

    def _original_accuracies(self, encrypted: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """Each clear-image model's accuracy on ``encrypted`` clipped to the pixel range."""
        valid = clipped(encrypted)
        return {name: accuracy(model, valid, labels)
                for name, model in zip(self.original_names_, self.original_models_, strict=True)}

    def fit(self, train: ArrayDataset, validation: ArrayDataset, public: ArrayDataset) -> EncryptionMaskSelector:
        """Train the models on ``train``, score and attack candidates on ``validation``, choose the target.

        Parameters
        ----------
        train : ArrayDataset
            The defender's training images.
        validation : ArrayDataset
            Images the candidates are scored (and attacked) on.
        public : ArrayDataset
            Labelled public images: the mixing pool of the ``mix`` family and the attacker's data.

        Raises
        ------
        DataError
            For non-finite pixels or images whose shape differs from the masks'.
        SelectionError
            When no candidate meets a rule with ``require_qualified`` (naming the best available).
        """
        if self.encrypted_training not in ("shared", "per_mask"):
            raise ConfigError(f"unknown encrypted_training {self.encrypted_training!r}; use shared or per_mask")
        if not self.original_models:
            raise ConfigError("original_models is empty; name at least one clear-image model (two or more advised)")
        rule = self.rule or MaskRule()
        shape = train.input_shape
        check_images(train.x)
        check_images(validation.x, shape)
        check_images(public.x, shape)
        self.suite_ = AttackSuite(
            self.attacks, n_keys=self.attack_keys, hidden=self.attack_hidden, epochs=self.attack_epochs,
            decoder_epochs=self.decoder_epochs, known_pairs=self.known_pairs, random_state=self.random_state,
        ).fit(public.x, public.y, self.keys)
        self.masks_ = [PerImageMask.fresh(key, shape, public.x) if self.per_image else
                       Mask.from_key(key, shape, public.x) for key in self.keys]
        seed = self.random_state
        names = list(self.original_models)
        self.original_names_ = [name if names.count(name) == 1 else f"{name}{i}" for i, name in enumerate(names)]
        self.original_models_ = [self._train(train, None, seed, Stream.ORIGINAL_MODEL, i, name)
                                 for i, name in enumerate(names)]
        self.original_model_ = self.original_models_[0]
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
            figures = self.suite_.evaluate(mask, clear, labels)
            originals = self._original_accuracies(encrypted, labels)
            self.scores_.append(MaskScore(
                key=mask.key,
                encrypted_accuracy=accuracy(encrypted_model, encrypted, labels),
                original_accuracy=max(originals.values()),
                ciphertext_ssim=float(ssim(clipped(encrypted), clear).mean()),
                attack_ssim=figures.ssim,
                attack_psnr=figures.psnr,
                original_accuracies=originals,
                attacker_accuracy=figures.accuracy,
                linkage=figures.linkage,
            ))
            self.examples_.append({"clear": clear[shown], "encrypted": encrypted[shown],
                                   **{kind: image[shown] for kind, image in figures.reconstructions.items()}})
        choice = select_mask(self.scores_, rule)
        if not choice.qualified and rule.require_qualified:
            raise SelectionError(f"{choice.message}; relax the rule, add candidates or set "
                                 "rule.require_qualified=false to accept it with a warning")
        self.target_index_ = choice.index
        self.qualified_ = choice.qualified
        self.warning_ = None if choice.qualified else f"{choice.message}; it is used although it does not qualify"
        self.target_ = self.masks_[self.target_index_]
        if self.encrypted_training == "shared":
            self.model_ = self._train(train, [self.target_], seed, Stream.ENCRYPTED_MODEL, 1 + self.target_index_)
        else:
            self.model_ = self.encrypted_models_[self.target_index_]
        return self

    def accuracies(self, data: ArrayDataset) -> list[dict[str, float]]:
        """Per candidate, the encrypted model's and the best clear-image model's accuracy on ``data``."""
        check_images(data.x, self.masks_[0].shape)
        rows = []
        for mask, encrypted_model in zip(self.masks_, self.encrypted_models_, strict=True):
            encrypted = mask.apply(data.x)
            rows.append({"encrypted_accuracy": accuracy(encrypted_model, encrypted, data.y),
                         "original_accuracy": max(self._original_accuracies(encrypted, data.y).values())})
        return rows

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        """Encrypt clear images (N, C, H, W) with the target mask."""
        return self.target_.apply(images)

    def predict(self, images: torch.Tensor) -> np.ndarray:
        """Recognise clear images: superimpose the target mask, run the deployed model."""
        return predict_proba(self.model_, self.transform(images)).argmax(dim=1).numpy()


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
