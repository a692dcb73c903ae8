"""Inpainting adversaries against occlusion: OpenCV's Telea / Navier–Stokes and a learned inpainter.

An occlusion hides what an adversary cannot restore; the job scores every region against each
inpainter here and keeps the worst case. Both take occluded images (N, C, H, W) and the region
and return restored images whose visible pixels are the occluded image's.

- :class:`TeleaInpainter`: ``cv2.inpaint``, which propagates the surrounding pixels inwards;
- :class:`LearnedInpainter`: a small dilated convolutional network trained on public images
  occluded at random with the candidate regions, so it learns what the data set's images
  usually hold under them (a digit's missing stroke, a shirt's missing sleeve).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fedfleet.errors import ConfigError
from fedfleet.privacy.checks import check_images
from fedfleet.privacy.occlusion import INPAINT_METHODS, OcclusionRegion, inpaint
from fedfleet.privacy.seeding import Stream, derive_seed
from fedfleet.privacy.training import fit_minibatches


class TeleaInpainter:
    """OpenCV inpainting (``method`` telea or ns) with neighbourhood ``radius``."""

    def __init__(self, radius: int = 3, method: str = "telea") -> None:
        if method not in INPAINT_METHODS:
            raise ConfigError(f"unknown inpainting method {method!r}; choose telea or ns")
        self.radius = radius
        self.method = method
        self.name = method

    def inpaint(self, occluded: torch.Tensor, region: OcclusionRegion) -> torch.Tensor:
        """Restore ``region`` in every occluded image (N, C, H, W)."""
        return inpaint(occluded, region, self.radius, self.method)


class LearnedInpainter:
    """A convolutional inpainter trained on public images with random occlusions.

    Parameters
    ----------
    hidden : int
        Channels of the hidden layers.
    epochs, batch_size, lr : int, int, float
        Adam training settings.
    random_state : int
        Seeds the weights, batch order and which region occludes which image.

    Attributes
    ----------
    network_ : nn.Sequential
        (N, C + 1, H, W) occluded image and hole map -> (N, C, H, W) image estimate.
    """

    name = "learned"

    def __init__(self, hidden: int = 16, epochs: int = 5, batch_size: int = 64, lr: float = 2e-3,
                 random_state: int = 0) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state

    def fit(self, public: torch.Tensor, regions: Sequence[OcclusionRegion], fill: float = 0.0) -> LearnedInpainter:
        """Train on clear ``public`` images (N, C, H, W), each batch occluded by random ``regions``."""
        public = check_images(public)
        if not regions:
            raise ConfigError("the learned inpainter needs at least one occlusion region to train on")
        holes = torch.stack([region.mask() for region in regions]).float()  # (R, H, W)
        channels = public.shape[1]
        h = self.hidden
        with torch.random.fork_rng():
            torch.manual_seed(derive_seed(self.random_state, Stream.OCCLUSION_SAMPLE, 1))
            self.network_ = nn.Sequential(
                nn.Conv2d(channels + 1, h, 3, padding=1), nn.ReLU(),
                nn.Conv2d(h, h, 3, padding=2, dilation=2), nn.ReLU(),
                nn.Conv2d(h, h, 3, padding=4, dilation=4), nn.ReLU(),
                nn.Conv2d(h, channels, 3, padding=1), nn.Sigmoid(),
            )
        network = self.network_
        rng = torch.Generator().manual_seed(derive_seed(self.random_state, Stream.OCCLUSION_SAMPLE, 2))

        def hole_loss(batch: torch.Tensor) -> torch.Tensor:
            clear = public[batch]
            hole = holes[torch.randint(len(holes), (len(batch),), generator=rng)][:, None]  # (B, 1, H, W)
            estimate = network(torch.cat([clear * (1 - hole) + fill * hole, hole], dim=1))
            return ((estimate - clear) ** 2 * hole).sum() / hole.sum().clamp_min(1.0) / channels

        fit_minibatches(network, len(public), hole_loss, epochs=self.epochs, batch_size=self.batch_size,
                        lr=self.lr, order=rng)
        return self

    @torch.no_grad()
    def inpaint(self, occluded: torch.Tensor, region: OcclusionRegion) -> torch.Tensor:
        """Restore ``region`` in every occluded image (N, C, H, W); visible pixels are kept."""
        occluded = check_images(occluded)
        hole = region.mask().float().expand(len(occluded), 1, *region.image_size)
        estimate = torch.cat([self.network_(chunk) for chunk in torch.cat([occluded, hole], dim=1).split(1000)])
        return occluded * (1 - hole) + estimate * hole
