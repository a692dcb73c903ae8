"""Per-client label histograms and the Non-IID degree (Jensen-Shannon divergence, base 2)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def label_histograms(labels: np.ndarray, client_indices: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    """Counts of each class per client, shape (num_clients, num_classes)."""
    labels = np.asarray(labels)
    return np.stack([np.bincount(labels[idx], minlength=num_classes) for idx in client_indices])


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in bits between distributions along the last axis; in [0, 1]."""
    p = np.asarray(p, dtype=np.float64)
    q = np.broadcast_to(np.asarray(q, dtype=np.float64), p.shape)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log2(a / b), 0.0)
        return terms.sum(axis=-1)

    return np.clip(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0, 1.0)


def label_distribution(counts: np.ndarray) -> np.ndarray:
    """Label counts (num_classes,) as shares summing to 1; all zeros for no labels at all."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def noniid_degree(histograms: np.ndarray) -> np.ndarray:
    """Each client's Non-IID degree: JSD (base 2) between its label distribution and the global one.

    Parameters
    ----------
    histograms : numpy.ndarray
        Shape (num_clients, num_classes) label counts.

    Returns
    -------
    numpy.ndarray
        Shape (num_clients,), values in [0, 1]; 0 means the client's labels match the global mix.
    """
    histograms = np.asarray(histograms, dtype=np.float64)
    global_dist = label_distribution(histograms.sum(axis=0))
    sizes = histograms.sum(axis=1, keepdims=True)
    client_dist = np.divide(histograms, sizes, out=np.zeros_like(histograms), where=sizes > 0)
    return js_divergence(client_dist, global_dist)


def partition_table(histograms: np.ndarray) -> list[dict[str, object]]:
    """One row per client: size, number of classes present, dominant class share, Non-IID degree."""
    degree = noniid_degree(histograms)
    rows: list[dict[str, object]] = []
    for client, (counts, jsd) in enumerate(zip(histograms, degree, strict=True)):
        total = int(counts.sum())
        rows.append({
            "client": client,
            "samples": total,
            "classes": int((counts > 0).sum()),
            "top_class_share": float(counts.max() / total) if total else 0.0,
            "noniid_degree": float(jsd),
        })
    return rows
