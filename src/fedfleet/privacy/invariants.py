"""Key-free attack: a transform that gives the same output whatever the key, then a classifier.

Threat model: the adversary knows the superimposing mode (the family is public) but holds no key
and no pair; it has labelled public images from the same distribution. Some modes leave a
function of the image untouched by every key: ``sign_flip`` maps ``x`` to ``0.5 ± (x - 0.5)``,
so ``|y - 0.5| = |x - 0.5|``; ``multiply`` by a ±1 pattern keeps ``|y| = x``. The attacker applies
the transform to its public images, trains a classifier on them, and classifies ciphertexts
through the same transform. No key search, no pair: a shared key and per-image keys fall alike.
Written independently of the selection code; the classifier is scikit-learn's logistic
regression, never a model the defender trained.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

INVARIANTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "abs_centred": lambda images: (images - 0.5).abs(),  # undoes every sign_flip key
    "abs": lambda images: images.abs(),  # undoes multiply by any ±1 pattern
}


class InvariantClassifierAttack:
    """Classify ciphertexts through a key-invariant transform.

    Parameters
    ----------
    invariant : str
        A name in ``INVARIANTS``.
    """

    def __init__(self, invariant: str) -> None:
        if invariant not in INVARIANTS:
            raise ValueError(f"unknown invariant {invariant!r}; choose one of {', '.join(INVARIANTS)}")
        self.invariant = invariant

    def fit(self, public: torch.Tensor, labels: torch.Tensor) -> InvariantClassifierAttack:
        """Train the attacker's classifier on transformed public images (N, C, H, W) and their labels."""
        self.classifier_ = LogisticRegression(max_iter=2000).fit(self._features(public), labels.numpy())
        return self

    def predict(self, ciphertexts: torch.Tensor) -> np.ndarray:
        """Predicted labels of ciphertexts (N, C, H, W)."""
        return np.asarray(self.classifier_.predict(self._features(ciphertexts)))

    def accuracy(self, ciphertexts: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of ``ciphertexts`` the attacker labels correctly."""
        return float((self.predict(ciphertexts) == labels.numpy()).mean())

    def _features(self, images: torch.Tensor) -> np.ndarray:
        return INVARIANTS[self.invariant](images.double()).flatten(1).numpy()
