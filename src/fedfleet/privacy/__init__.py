"""Image privacy: encryption-mask selection and occlusion selection, with attacks that test them.

- :mod:`~fedfleet.privacy.masks` / :mod:`~fedfleet.privacy.superimpose`: seeded mask
  families and superimposing modes;
- :mod:`~fedfleet.privacy.mask_selection`: train on encrypted images, choose the target mask;
- :mod:`~fedfleet.privacy.attacks`: averaging and learned-inverse reconstruction attacks;
- :mod:`~fedfleet.privacy.occlusion` / :mod:`~fedfleet.privacy.occlusion_selection`:
  candidate regions, security and availability scores, the target region;
- :mod:`~fedfleet.privacy.metrics`: SSIM and PSNR.
"""

from fedfleet.privacy.attacks import AveragingAttack, InverseAttack
from fedfleet.privacy.mask_selection import EncryptionMaskSelector, MaskRule, MaskScore, choose_mask
from fedfleet.privacy.masks import Mask, MaskKey, make_pattern
from fedfleet.privacy.metrics import psnr, ssim
from fedfleet.privacy.occlusion import OcclusionRegion, generate_regions, inpaint, occlude
from fedfleet.privacy.occlusion_selection import (
    OcclusionRule,
    OcclusionScore,
    OcclusionSelector,
    choose_region,
    train_on_occluded,
)
from fedfleet.privacy.selection import SelectionError
from fedfleet.privacy.superimpose import invert, superimpose

__all__ = [
    "AveragingAttack",
    "EncryptionMaskSelector",
    "InverseAttack",
    "Mask",
    "MaskKey",
    "MaskRule",
    "MaskScore",
    "OcclusionRegion",
    "OcclusionRule",
    "OcclusionScore",
    "OcclusionSelector",
    "SelectionError",
    "choose_mask",
    "choose_region",
    "generate_regions",
    "inpaint",
    "invert",
    "make_pattern",
    "occlude",
    "psnr",
    "ssim",
    "superimpose",
    "train_on_occluded",
]
