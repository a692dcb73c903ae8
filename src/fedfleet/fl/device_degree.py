"""The Non-IID degree a device computes of its own labels, against a global distribution it was sent.

Only the scalar degree leaves the device (in ``ClientUpdate.metrics``), never its label counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fedfleet.data.partition.stats import js_divergence, label_distribution

DEGREE_METRIC = "noniid_degree"
"""The key of the degree in ``ClientUpdate.metrics``."""


def local_degree(labels: torch.Tensor, reference: Sequence[float]) -> float:
    """D_k: Jensen-Shannon divergence (base 2, in [0, 1]) of ``labels``' class shares from ``reference``.

    Parameters
    ----------
    labels : torch.Tensor
        (n,) integer class labels of the device's training data.
    reference : sequence of float
        The global label distribution, one share per class.
    """
    counts = np.bincount(labels.numpy(), minlength=len(reference))
    return float(js_divergence(label_distribution(counts), np.asarray(reference, dtype=np.float64)))
