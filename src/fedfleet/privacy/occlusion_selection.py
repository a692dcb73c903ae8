"""Choosing an occlusion region: score candidates for security and availability, pick by rule.

After US20230244932A1 and arXiv 2312.08975: the user states what is sensitive (a sensitivity
map); candidates come from the occlusion parameters; a region's visual security is how much of
the sensitive content the strongest inpainting adversary cannot restore (the worst case over
the inpainters), its data availability the task model's accuracy on occluded images (a model
trained on occluded images, so recognition-critical pixels a region spares count, those it
hides do not); the target region is chosen by a configurable rule, and the recognition model
is then trained on images occluded with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import torch
from torch import nn

from fedfleet.data.datasets import ArrayDataset
from fedfleet.errors import ConfigError
from fedfleet.privacy.checks import check_images
from fedfleet.privacy.metrics import ssim
from fedfleet.privacy.occlusion import (
    OcclusionRegion,
    box_saliency,
    covered_saliency,
    occlude,
    uniform_saliency,
    unrestored_share,
)
from fedfleet.privacy.selection import SelectionError, least_violating, pick_feasible
from fedfleet.privacy.training import accuracy, train_classifier, true_class_confidence


@dataclass(frozen=True)
class OcclusionRule:
    """How the target region is chosen.

    Attributes
    ----------
    name : {"constrained", "weighted"}
        ``constrained``: highest security with availability at least ``min_availability``;
        ``weighted``: highest ``security_weight``·security + (1 − security_weight)·availability.
    min_availability : float
        Availability floor for ``constrained``.
    security_weight : float
        Weight of security for ``weighted``, in [0, 1].
    """

    name: Literal["constrained", "weighted"] = "constrained"
    min_availability: float = 0.7
    security_weight: float = 0.5


class Inpainter(Protocol):
    """An inpainting adversary: restores a region in occluded images (N, C, H, W)."""

    name: str

    def inpaint(self, occluded: torch.Tensor, region: OcclusionRegion) -> torch.Tensor: ...


@dataclass(frozen=True)
class OcclusionScore:
    """One candidate region's scores."""

    region: OcclusionRegion
    restoration: float  # 1 − SSIM of the whole image after the best inpainting (worst case)
    saliency_covered: float  # share of sensitive mass hidden
    security: float
    availability: float
    unrestored: dict[str, float] = field(default_factory=dict)  # per inpainter: sensitive content not restored

    def as_row(self, label: str | None = None) -> dict[str, object]:
        """Table row; ``label`` replaces the region's name (e.g. for averaged baselines)."""
        return {
            "region": label or self.region.name,
            "area": self.region.area,
            **{f"{name}_unrestored": value for name, value in self.unrestored.items()},
            "restoration_1-ssim": self.restoration,
            "saliency_covered": self.saliency_covered,
            "security": self.security,
            "availability": self.availability,
        }


def choose_region(scores: Sequence[OcclusionScore], rule: OcclusionRule) -> int:
    """Index of the target region under ``rule``.

    Raises
    ------
    SelectionError
        When no candidate meets the availability floor; the message names the closest one.
    """
    if not scores:
        raise SelectionError("there are no occlusion candidates; widen the occlusion parameters")
    if rule.name == "weighted":
        w = rule.security_weight
        combined = [w * s.security + (1 - w) * s.availability for s in scores]
        return int(np.argmax(combined))
    if rule.name != "constrained":
        raise ConfigError(f"unknown occlusion rule {rule.name!r}; choose 'constrained' or 'weighted'")
    security = [s.security for s in scores]
    shortfall = [max(0.0, rule.min_availability - s.availability) for s in scores]
    chosen = pick_feasible(security, shortfall)
    if chosen is None:
        best = scores[least_violating(security, shortfall)]
        raise SelectionError(
            f"no occlusion region keeps availability >= {rule.min_availability:g}; the best available "
            f"is {best.region.name} (availability {best.availability:.3f}, security {best.security:.3f}); "
            "lower rule.min_availability or use smaller regions"
        )
    return chosen


def score_region(
    region: OcclusionRegion,
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    saliency: torch.Tensor,
    inpainters: Sequence[Inpainter],
    *,
    saliency_weight: float = 0.0,
    availability: Literal["accuracy", "confidence"] = "accuracy",
    fill: float = 0.0,
) -> OcclusionScore:
    """Security (worst case over ``inpainters``) and availability of one region on ``images`` (N, C, H, W).

    security = (1 − β)·min over inpainters of the unrestored sensitive share + β·covered sensitive share.
    """
    occluded = occlude(images, region, fill)
    reference = images.mean(dim=0)
    unrestored, restoration = {}, 1.0
    for inpainter in inpainters:
        restored = inpainter.inpaint(occluded, region)
        unrestored[inpainter.name] = unrestored_share(images, restored, saliency, reference)
        restoration = min(restoration, float(1.0 - ssim(images, restored).mean()))
    covered = covered_saliency(saliency, region)
    if availability == "accuracy":
        usable = accuracy(model, occluded, labels)
    elif availability == "confidence":
        usable = true_class_confidence(model, occluded, labels)
    else:
        raise ConfigError(f"unknown availability measure {availability!r}; use accuracy or confidence")
    return OcclusionScore(
        region=region,
        restoration=restoration,
        saliency_covered=covered,
        security=(1 - saliency_weight) * min(unrestored.values()) + saliency_weight * covered,
        availability=usable,
        unrestored=unrestored,
    )


class OcclusionSelector:
    """Score occlusion candidates with a target model and choose the target region.

    Parameters
    ----------
    regions : sequence of OcclusionRegion
        The candidates (see :func:`fedfleet.privacy.occlusion.generate_regions`).
    rule : OcclusionRule
        The selection rule.
    inpainters : sequence of Inpainter, optional
        The adversaries (see :mod:`fedfleet.privacy.inpainting`); default OpenCV's Telea.
    saliency_weight : float
        Weight β of the covered sensitive share in visual security, in [0, 1].
    sensitive_boxes : sequence of [top, left, height, width] fractions, optional
        Known sensitive regions.
    sensitivity : torch.Tensor, optional
        (H, W) or (N, H, W) sensitivity of the scored images, e.g. from a mask file or a model of
        the sensitive attribute; without it or boxes, every pixel is equally sensitive.
    availability : {"accuracy", "confidence"}
        Availability measure.
    fill : float
        Pixel value of occluded pixels.

    Attributes
    ----------
    scores_ : list of OcclusionScore
    target_index_ : int
    target_ : OcclusionRegion
    """

    def __init__(
        self,
        regions: Sequence[OcclusionRegion],
        rule: OcclusionRule | None = None,
        *,
        inpainters: Sequence[Inpainter] | None = None,
        saliency_weight: float = 0.0,
        sensitive_boxes: Sequence[Sequence[float]] | None = None,
        sensitivity: torch.Tensor | None = None,
        availability: Literal["accuracy", "confidence"] = "accuracy",
        fill: float = 0.0,
    ) -> None:
        self.regions = regions
        self.rule = rule
        self.inpainters = inpainters
        self.saliency_weight = saliency_weight
        self.sensitive_boxes = sensitive_boxes
        self.sensitivity = sensitivity
        self.availability = availability
        self.fill = fill

    def saliency(self, data: ArrayDataset) -> torch.Tensor:
        """The (N, H, W) sensitivity of ``data``, each image summing to 1."""
        size = (data.input_shape[1], data.input_shape[2])
        if self.sensitivity is not None:
            given = self.sensitivity.expand(len(data), *size).float()
            return given / given.flatten(1).sum(dim=1).clamp_min(1e-12)[:, None, None]
        if self.sensitive_boxes:
            return box_saliency(self.sensitive_boxes, len(data), size)
        return uniform_saliency(len(data), size)

    def score(self, region: OcclusionRegion, model: nn.Module, data: ArrayDataset,
              saliency: torch.Tensor) -> OcclusionScore:
        """Scores of any region (a candidate or a baseline) with this selector's settings."""
        from fedfleet.privacy.inpainting import TeleaInpainter

        inpainters = self.inpainters or [TeleaInpainter()]
        return score_region(region, model, data.x, data.y, saliency, inpainters,
                            saliency_weight=self.saliency_weight, availability=self.availability, fill=self.fill)

    def fit(self, model: nn.Module, data: ArrayDataset) -> OcclusionSelector:
        """Score every candidate with the task ``model`` on ``data`` and choose the target.

        Raises
        ------
        DataError
            For non-finite pixels or images of another size than the regions'.
        SelectionError
            When no candidate meets the rule (naming the best available).
        """
        check_images(data.x)
        if not 0.0 <= self.saliency_weight <= 1.0:
            raise ConfigError(f"saliency_weight must be in [0, 1], got {self.saliency_weight}")
        saliency = self.saliency(data)
        self.scores_ = [self.score(region, model, data, saliency) for region in self.regions]
        self.target_index_ = choose_region(self.scores_, self.rule or OcclusionRule())
        self.target_ = self.regions[self.target_index_]
        return self

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        """Occlude images (N, C, H, W) with the target region."""
        return occlude(images, self.target_, self.fill)


def train_on_occluded(
    data: ArrayDataset, region: OcclusionRegion, model_name: str = "cnn", *, fill: float = 0.0,
    epochs: int = 3, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
) -> nn.Module:
    """A recognition model trained on images occluded with ``region``."""
    return train_classifier(
        data, model_name, epochs=epochs, batch_size=batch_size, lr=lr,
        transform=lambda images: occlude(images, region, fill), seed=seed,
    )


def train_on_candidates(
    data: ArrayDataset, regions: Sequence[OcclusionRegion], model_name: str = "cnn", *, fill: float = 0.0,
    epochs: int = 3, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
) -> nn.Module:
    """A task model trained on images each occluded by a random candidate region (new draw per batch).

    It scores availability: a region that hides what recognition needs stays costly, one that a
    model trained on occluded images can work around does not.
    """
    holes = torch.stack([region.mask() for region in regions])  # (R, H, W)
    rng = torch.Generator().manual_seed(seed)

    def transform(images: torch.Tensor) -> torch.Tensor:
        chosen = holes[torch.randint(len(holes), (len(images),), generator=rng)][:, None]
        return images.masked_fill(chosen, fill)

    return train_classifier(data, model_name, epochs=epochs, batch_size=batch_size, lr=lr, transform=transform,
                            seed=seed)
