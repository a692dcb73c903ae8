"""Validated configs of ``fedfleet privacy mask`` and ``fedfleet privacy occlude``.

Every key has a default (the shipped defaults run on Fashion-MNIST in a few minutes);
unknown keys and bad values are one-line ConfigErrors naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, model_validator

from fedfleet.config import ConfigSection, ModelT, load_model


class PrivacyDataConfig(ConfigSection):
    dataset: str = "fashion_mnist"  # fashion_mnist | digits
    root: str | None = None  # folder with the data set's files; None searches the usual places
    train_size: int | None = Field(6000, ge=10)  # defender's training images (None: all that remain)
    test_size: int | None = Field(1000, ge=10)  # validation images candidates are scored on (None: all)
    holdout_size: int = Field(2000, ge=0)  # further test images for an unbiased check of the choice; 0: none


class MaskDataConfig(PrivacyDataConfig):
    public_size: int = Field(2000, ge=10)  # public images held out of training (attacker, mix pool)


class PrivacyModelConfig(ConfigSection):
    name: str = "cnn"  # mlp | cnn | lenet5
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)  # Adam step size


class MaskCandidateConfig(ConfigSection):
    family: Literal["sign", "noise", "block", "checkerboard", "mix"] = "sign"
    mode: Literal["add_clip", "multiply", "sign_flip", "blend"] = "sign_flip"
    count: int = Field(1, ge=1)  # keys (seeds) of this family and mode in the set
    strength: float = Field(0.5, gt=0)  # pattern amplitude for add_clip
    weight: float = Field(0.5, ge=0, lt=1)  # pattern weight for blend
    block: int = Field(2, ge=1)  # tile side in pixels for block / checkerboard

    @model_validator(mode="after")
    def _mix_cannot_sign_flip(self) -> MaskCandidateConfig:
        if self.family == "mix" and self.mode == "sign_flip":
            raise ValueError("mask family 'mix' cannot use mode 'sign_flip': a public image has no negative "
                             "pixels, so nothing would be flipped; use blend, add_clip or multiply")
        return self


def _default_candidates() -> list[MaskCandidateConfig]:
    return [
        MaskCandidateConfig(family="sign", mode="sign_flip", count=2),
        MaskCandidateConfig(family="sign", mode="multiply", count=2),
        MaskCandidateConfig(family="noise", mode="add_clip", count=2),
        MaskCandidateConfig(family="block", mode="sign_flip", count=2, block=4),
        MaskCandidateConfig(family="checkerboard", mode="sign_flip", count=1, block=4),
        MaskCandidateConfig(family="mix", mode="blend", count=2, weight=0.5),
    ]


class MaskRuleConfig(ConfigSection):
    name: Literal["constrained", "gap"] = "constrained"
    max_original_accuracy: float = Field(0.3, ge=0, le=1)  # the best clear-image model must fail (constrained)
    max_attack_ssim: float | None = Field(0.5, ge=-1, le=1)  # cap on the worst attack's SSIM; null: none
    max_attacker_accuracy: float | None = Field(0.3, ge=0, le=1)  # cap on the best attacker's accuracy; null: none
    require_qualified: bool = False  # no candidate qualifies: false takes the least bad with a warning, true exits 2
    max_linkage: float | None = Field(0.05, ge=0, le=1)  # cap on the worst linkage rate; null: none


AttackKind = Literal["average", "linear", "network", "known_plaintext", "invariant", "distribution", "decoder"]


class MaskAttackConfig(ConfigSection):
    kinds: list[AttackKind] = Field(default_factory=lambda: list(get_args(AttackKind)))
    keys: int = Field(8, ge=1)  # keys of the family the inverse attacker draws
    hidden: int = Field(256, ge=1)  # hidden units of the network attack
    epochs: int = Field(5, ge=1)  # training epochs of the network attack
    known_pairs: int = Field(1, ge=1)  # (clear, encrypted) pairs the known-plaintext attacker holds
    decoder_epochs: int = Field(10, ge=1)  # training epochs of the convolutional decoder attack


class MaskJobConfig(ConfigSection):
    """``fedfleet privacy mask``: candidates, training, rule and attacks."""

    name: str = "privacy-mask"
    seed: int = Field(0, ge=0, lt=2**32)  # every random stream of the job derives from it
    data: MaskDataConfig = MaskDataConfig()
    model: PrivacyModelConfig = PrivacyModelConfig()
    original_models: list[str] = Field(default_factory=lambda: ["cnn", "mlp"], min_length=2)  # clear-image models
    encrypted_training: Literal["shared", "per_mask"] = "shared"  # one model for the set, or one per mask
    keys: Literal["shared", "per_image"] = "shared"  # one mask for every image, or a fresh mask per image
    candidates: list[MaskCandidateConfig] = Field(default_factory=_default_candidates, min_length=1)
    rule: MaskRuleConfig = MaskRuleConfig()
    attacks: MaskAttackConfig = MaskAttackConfig()
    examples: int = Field(8, ge=1)  # images shown per row of the image grids


class OcclusionParamsConfig(ConfigSection):
    shapes: list[Literal["rect", "ellipse"]] = Field(["rect", "ellipse"], min_length=1)
    sizes: list[float] = Field([0.25, 0.4], min_length=1)  # box side, fraction of the image side
    count: int = Field(1, ge=1)  # non-overlapping regions per candidate
    stride: float = Field(0.125, gt=0, le=1)  # position grid spacing, fraction of the image side
    fill: float = Field(0.0, ge=0, le=1)  # pixel value of occluded pixels
    max_candidates: int = Field(200, ge=1)  # cap per (shape, size); a seeded sample above it


class OcclusionSecurityConfig(ConfigSection):
    # What is sensitive (at most one; none: every pixel alike)
    sensitive_boxes: list[list[float]] | None = None  # [top, left, height, width] fractions
    sensitive_mask: str | None = None  # .npy (no pickle) or grey PNG, H x W, weights >= 0
    sensitive_groups: list[list[int]] | None = None  # classes grouped into values of the sensitive attribute
    saliency_weight: float = Field(0.0, ge=0, le=1)  # weight of the covered sensitive share vs the unrestored share
    inpainters: list[Literal["telea", "ns", "learned"]] = Field(["telea", "learned"], min_length=1)  # worst case
    inpaint_radius: int = Field(3, ge=1)  # OpenCV's neighbourhood radius
    learned_epochs: int = Field(5, ge=1)  # training epochs of the learned inpainter

    @model_validator(mode="after")
    def _one_statement(self) -> OcclusionSecurityConfig:
        given = [k for k in ("sensitive_boxes", "sensitive_mask", "sensitive_groups") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give at most one of {', '.join(given)}: each states what is sensitive")
        return self


class OcclusionRuleConfig(ConfigSection):
    name: Literal["constrained", "weighted"] = "constrained"
    min_availability: float = Field(0.7, ge=0, le=1)  # floor for constrained
    security_weight: float = Field(0.5, ge=0, le=1)  # weight of security for weighted


class OcclusionDataConfig(PrivacyDataConfig):
    public_size: int = Field(2000, ge=10)  # public images held out of training: the learned inpainter's data


class OcclusionJobConfig(ConfigSection):
    """``fedfleet privacy occlude``: candidates, scores, rule and the occluded-image model."""

    name: str = "privacy-occlude"
    seed: int = Field(0, ge=0, lt=2**32)  # every random stream of the job derives from it
    data: OcclusionDataConfig = OcclusionDataConfig()
    model: PrivacyModelConfig = PrivacyModelConfig()
    occlusion: OcclusionParamsConfig = OcclusionParamsConfig()
    security: OcclusionSecurityConfig = OcclusionSecurityConfig()
    availability: Literal["accuracy", "confidence"] = "accuracy"
    availability_model: Literal["occluded", "clear"] = "occluded"  # task model trained on occluded images or not
    rule: OcclusionRuleConfig = OcclusionRuleConfig()
    eval_size: int = Field(300, ge=1)  # validation images every candidate is scored on
    retrain: bool = True  # train a recognition model on images occluded with the target
    examples: int = Field(8, ge=1)  # images shown per row of the image grids


def load_job_config(
    model: type[ModelT], source: str | Path | dict[str, Any] | None, overrides: list[str] | None = None
) -> ModelT:
    """Validate a YAML file or mapping (None: defaults) with ``--set`` overrides applied."""
    return load_model(model, source, overrides)
