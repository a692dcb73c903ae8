"""Label leakage: what a passive party infers about the labels from the gradients it receives.

The attack of Li et al. (2022, "Label Leakage and Protection in Two-party Split Learning"):
for a softmax head the gradient of the loss with respect to a sample's embedding is
``J^T (p - onehot(y))``, so gradients of one class point in similar directions. The passive
party clusters its samples' L2-normalised gradients with KMeans (k = number of classes) and
takes the clusters as label groups. Only the passive party's own view is used: for each
epoch, the gradient it received for each of its samples.

The score is purity: each cluster named after its most common true label, the share of
samples whose label that recovers (naming needs no labels for a binary attacker who knows
which class is more common and clusters well). Any clustering's purity is at least the
majority-class rate; small clusters reach a little more by chance, so the chance level
reported beside it is the purity of the same clusters with the labels shuffled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits


def cluster_gradients(grads: np.ndarray, num_classes: int, random_state: int = 0) -> np.ndarray:
    """Cluster index per sample from its received gradient, shape (samples, dim) -> (samples,)."""
    norms = np.linalg.norm(grads, axis=1, keepdims=True)
    directions = grads / np.where(norms > 0, norms, 1.0)
    with threadpool_limits(1):  # small problems: many threads only contend on a shared CPU
        clusters: np.ndarray = KMeans(n_clusters=num_classes, n_init=10, random_state=random_state).fit_predict(
            directions
        )
    return clusters


def purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Share of samples whose label is their cluster's most common label."""
    hits = sum(np.bincount(labels[clusters == c]).max() for c in np.unique(clusters))
    return float(hits / len(labels))


def chance_purity(clusters: np.ndarray, labels: np.ndarray, repeats: int = 20, random_state: int = 0) -> float:
    """Mean purity of ``clusters`` against shuffled ``labels``: what the clustering scores knowing nothing."""
    rng = np.random.default_rng(random_state)
    return float(np.mean([purity(clusters, rng.permutation(labels)) for _ in range(repeats)]))


def majority_rate(labels: np.ndarray) -> float:
    """Share of the most common label: the purity a clustering reaches by chance at least."""
    return float(np.bincount(labels).max() / len(labels))


def label_leakage(
    received: np.ndarray, labels: np.ndarray, num_classes: int, random_state: int = 0, max_samples: int = 2000
) -> dict[str, Any]:
    """Run the attack on each epoch's gradients and on their mean over epochs.

    On more than ``max_samples`` samples the attack runs on a random subset of that many
    (the same for every attempt), whose purity estimates the whole set's.

    Parameters
    ----------
    received : np.ndarray
        Gradients the passive party received, shape (epochs, samples, dim).
    labels : np.ndarray
        True training labels (int), shape (samples,), used only to score the attack.
    num_classes : int
        Clusters to form.
    random_state : int
        Seeds KMeans, the subset and the label shuffles of the chance level.
    max_samples : int
        Largest number of samples clustered (KMeans time grows with it).

    Returns
    -------
    dict
        ``recovery_rate`` (the best of the attempts: the attacker's best case),
        ``chance_rate`` (the best of the attempts with shuffled labels), ``majority_rate``,
        ``recovery_by_epoch`` and ``recovery_mean_gradient`` (clustering the per-sample mean
        gradient over epochs, which averages out noise).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) > max_samples:
        subset = np.random.default_rng(random_state).choice(len(labels), max_samples, replace=False)
        received, labels = received[:, subset], labels[subset]
    attempts = [*received, received.mean(axis=0)]  # each epoch's view, then their mean
    clusterings = [cluster_gradients(g, num_classes, random_state) for g in attempts]
    recovered = [purity(clusters, labels) for clusters in clusterings]
    return {
        "recovery_rate": max(recovered),
        "chance_rate": max(chance_purity(clusters, labels, random_state=random_state) for clusters in clusterings),
        "majority_rate": majority_rate(labels),
        "recovery_by_epoch": recovered[:-1],
        "recovery_mean_gradient": recovered[-1],
    }
