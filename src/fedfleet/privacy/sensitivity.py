"""What the user says is sensitive, as a per-image map (N, H, W) that sums to 1 per image.

Four ways (``security`` config): given boxes; a mask file (``.npy`` or PNG); the gradient
saliency of a model of the *sensitive attribute* (classes grouped into attribute values, e.g.
footwear against clothing), trained on the defender's images; or, with nothing stated, every
pixel alike. Never the task model's own saliency: covering what recognition needs is what
occlusion must avoid, not what it should be rewarded for.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedfleet.data.datasets import ArrayDataset
from fedfleet.errors import ConfigError
from fedfleet.privacy.occlusion import box_saliency, file_saliency, gradient_saliency, uniform_saliency
from fedfleet.privacy.training import train_classifier


def attribute_labels(labels: torch.Tensor, groups: Sequence[Sequence[int]], n_classes: int) -> torch.Tensor:
    """Each class label mapped to the index of its attribute group.

    Raises
    ------
    ConfigError
        When the groups do not assign every class exactly once.
    """
    owner = {}
    for index, group in enumerate(groups):
        for label in group:
            if label in owner or not 0 <= label < n_classes:
                raise ConfigError(f"security.sensitive_groups: class {label} is repeated or not in 0..{n_classes - 1}")
            owner[label] = index
    if len(owner) != n_classes or len(groups) < 2:
        raise ConfigError(f"security.sensitive_groups must put each of the {n_classes} classes in exactly one of "
                          "at least two groups")
    lookup = torch.tensor([owner[c] for c in range(n_classes)])
    return lookup[labels]


def sensitivity_map(
    scored: ArrayDataset, train: ArrayDataset, *, boxes: Sequence[Sequence[float]] | None = None,
    mask_file: str | None = None, groups: Sequence[Sequence[int]] | None = None, model_name: str = "cnn",
    epochs: int = 3, seed: int = 0,
) -> torch.Tensor:
    """The (N, H, W) sensitivity of ``scored``'s images from whichever statement is given (at most one)."""
    size = (scored.input_shape[1], scored.input_shape[2])
    if boxes:
        return box_saliency(boxes, len(scored), size)
    if mask_file is not None:
        return file_saliency(mask_file, len(scored), size)
    if groups is not None:
        names = tuple(str(i) for i in range(len(groups)))
        attribute = ArrayDataset(train.x, attribute_labels(train.y, groups, train.num_classes), names)
        model = train_classifier(attribute, model_name, epochs=epochs, seed=seed)
        return gradient_saliency(model, scored.x, attribute_labels(scored.y, groups, scored.num_classes))
    return uniform_saliency(len(scored), size)
