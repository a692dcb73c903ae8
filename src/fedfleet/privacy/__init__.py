"""Image privacy: encryption-mask selection and occlusion selection, with attacks that test them.

- :mod:`~fedfleet.privacy.masks` / :mod:`~fedfleet.privacy.superimpose`: seeded mask
  families and superimposing modes;
- :mod:`~fedfleet.privacy.mask_selection` / :mod:`~fedfleet.privacy.mask_rule`: train on
  encrypted images, choose the target mask by a rule that caps the attack suite's worst case;
- :mod:`~fedfleet.privacy.keys`: per-image keys derived from a secret master key;
- :mod:`~fedfleet.privacy.attacks`, :mod:`~fedfleet.privacy.known_plaintext`,
  :mod:`~fedfleet.privacy.invariants`, :mod:`~fedfleet.privacy.distribution`,
  :mod:`~fedfleet.privacy.decoders`, :mod:`~fedfleet.privacy.linkage`: the attacks;
  :mod:`~fedfleet.privacy.suite` runs them against candidate masks;
- :mod:`~fedfleet.privacy.occlusion` / :mod:`~fedfleet.privacy.occlusion_selection`:
  candidate regions, security and availability scores, the target region;
  :mod:`~fedfleet.privacy.inpainting`: the inpainting adversaries (Telea, learned);
- :mod:`~fedfleet.privacy.predict`: recognise new images with a saved model and its key or region;
- :mod:`~fedfleet.privacy.metrics`: SSIM and PSNR.
"""

from fedfleet.privacy.attacks import AveragingAttack, InverseAttack
from fedfleet.privacy.decoders import DecoderAttack
from fedfleet.privacy.distribution import DistributionMatchingAttack
from fedfleet.privacy.inpainting import LearnedInpainter, TeleaInpainter
from fedfleet.privacy.keys import PerImageMask
from fedfleet.privacy.mask_rule import MaskChoice, MaskRule, MaskScore, choose_mask, select_mask
from fedfleet.privacy.mask_selection import EncryptionMaskSelector
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
from fedfleet.privacy.suite import AttackFigures, AttackSuite
from fedfleet.privacy.superimpose import invert, superimpose

__all__ = [
    "AttackFigures",
    "AttackSuite",
    "AveragingAttack",
    "DecoderAttack",
    "DistributionMatchingAttack",
    "EncryptionMaskSelector",
    "InverseAttack",
    "LearnedInpainter",
    "Mask",
    "MaskChoice",
    "MaskKey",
    "MaskRule",
    "MaskScore",
    "OcclusionRegion",
    "OcclusionRule",
    "OcclusionScore",
    "OcclusionSelector",
    "PerImageMask",
    "SelectionError",
    "TeleaInpainter",
    "choose_mask",
    "choose_region",
    "generate_regions",
    "inpaint",
    "invert",
    "make_pattern",
    "occlude",
    "psnr",
    "select_mask",
    "ssim",
    "superimpose",
    "train_on_occluded",
]
