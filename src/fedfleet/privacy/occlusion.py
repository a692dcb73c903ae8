"""Occlusion regions: generate candidates, occlude, inpaint, and score security/availability.

A candidate is ``count`` non-overlapping regions of one shape (``rect`` or ``ellipse``
inscribed in its box) and size, placed on a position grid with a given stride, always
fully inside the image. The sensitivity maps (N, H, W) say what must be hidden: given boxes,
a mask file, a model of the sensitive attribute's gradient saliency, or (nothing stated)
every pixel alike; :func:`unrestored_share` scores how much of it an inpainter fails to restore.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from fedfleet.errors import ConfigError, DataError
from fedfleet.privacy.checks import check_images
from fedfleet.privacy.seeding import Stream, stream

SHAPES: tuple[str, ...] = ("rect", "ellipse")
INPAINT_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
_ENUMERATE_LIMIT = 20_000  # above this many combinations of corners, placements are sampled lazily


@dataclass(frozen=True)
class OcclusionRegion:
    """``count`` regions of one shape and size at the given top-left corners.

    Attributes
    ----------
    shape : {"rect", "ellipse"}
        Region shape; an ellipse is inscribed in its height x width box.
    height, width : int
        Box size in pixels.
    corners : tuple of (int, int)
        Top-left (row, col) of each box; boxes may not overlap.
    image_size : (int, int)
        Height and width of the images the region is for.
    """

    shape: str
    height: int
    width: int
    corners: tuple[tuple[int, int], ...]
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ConfigError(f"unknown occlusion shape {self.shape!r}; choose one of: {', '.join(SHAPES)}")
        rows, cols = self.image_size
        for top, left in self.corners:
            if top < 0 or left < 0 or top + self.height > rows or left + self.width > cols:
                raise DataError(
                    f"occlusion box at ({top}, {left}) of size {self.height}x{self.width} leaves the "
                    f"{rows}x{cols} image"
                )
        if any(
            _boxes_overlap(a, b, self.height, self.width) for a, b in itertools.combinations(self.corners, 2)
        ):
            raise DataError(f"occlusion boxes {list(self.corners)} overlap; place them apart")

    @property
    def name(self) -> str:
        places = "+".join(f"({t},{c})" for t, c in self.corners)
        return f"{self.shape} {self.height}x{self.width} @ {places}"

    def mask(self) -> torch.Tensor:
        """Boolean (H, W) map of the occluded pixels."""
        rows, cols = self.image_size
        covered = torch.zeros(rows, cols, dtype=torch.bool)
        box = _shape_stencil(self.shape, self.height, self.width)
        for top, left in self.corners:
            covered[top : top + self.height, left : left + self.width] |= box
        return covered

    @property
    def area(self) -> int:
        """Occluded pixels."""
        return int(self.mask().sum())

    def to_dict(self) -> dict[str, object]:
        return {"shape": self.shape, "height": self.height, "width": self.width,
                "corners": [list(c) for c in self.corners], "image_size": list(self.image_size)}


def _shape_stencil(shape: str, height: int, width: int) -> torch.Tensor:
    if shape == "rect":
        return torch.ones(height, width, dtype=torch.bool)
    rows = (torch.arange(height, dtype=torch.float64) + 0.5 - height / 2) / (height / 2)
    cols = (torch.arange(width, dtype=torch.float64) + 0.5 - width / 2) / (width / 2)
    return rows[:, None] ** 2 + cols[None, :] ** 2 <= 1.0


def _boxes_overlap(a: tuple[int, int], b: tuple[int, int], height: int, width: int) -> bool:
    return abs(a[0] - b[0]) < height and abs(a[1] - b[1]) < width


def generate_regions(
    image_size: tuple[int, int],
    shapes: Sequence[str] = ("rect",),
    sizes: Sequence[float] = (0.25,),
    *,
    count: int = 1,
    stride: float = 0.125,
    max_candidates: int = 200,
    random_state: int = 0,
) -> list[OcclusionRegion]:
    """Candidate regions from the occlusion parameters.

    Parameters
    ----------
    image_size : (int, int)
        Image height and width.
    shapes : sequence of {"rect", "ellipse"}
        Region shapes.
    sizes : sequence of float
        Box side as a fraction of the image side, in (0, 1].
    count : int
        Non-overlapping regions per candidate.
    stride : float
        Spacing of the position grid as a fraction of the image side (at least 1 pixel).
    max_candidates : int
        Cap per (shape, size); above it a seeded sample of placements is kept. When the
        corners have more than 20,000 combinations, placements are drawn lazily instead of
        listed (each corner uniform among those whose box does not overlap the earlier ones).
    random_state : int
        Seeds that sample (through its own stream, :mod:`fedfleet.privacy.seeding`).

    Returns
    -------
    list of OcclusionRegion
    """
    rows, cols = image_size
    if count < 1:
        raise ConfigError(f"occlusion count must be >= 1, got {count}")
    rng = stream(random_state, Stream.OCCLUSION_SAMPLE)
    regions: list[OcclusionRegion] = []
    for shape, size in itertools.product(shapes, sizes):
        if not 0 < size <= 1:
            raise ConfigError(f"occlusion size must be a fraction of the image side in (0, 1], got {size}")
        height, width = max(1, round(size * rows)), max(1, round(size * cols))
        step_r, step_c = max(1, round(stride * rows)), max(1, round(stride * cols))
        grid = [(t, c) for t in range(0, rows - height + 1, step_r) for c in range(0, cols - width + 1, step_c)]
        if math.comb(len(grid), count) <= _ENUMERATE_LIMIT:
            placements = _all_placements(grid, count, height, width)
            if len(placements) > max_candidates:
                keep = np.sort(rng.choice(len(placements), size=max_candidates, replace=False))
                placements = [placements[i] for i in keep]
        else:
            placements = _sampled_placements(grid, count, height, width, max_candidates, rng)
        if not placements:
            raise ConfigError(
                f"{count} non-overlapping {shape} regions of size {size:g} do not fit a "
                f"{rows}x{cols} image; lower occlusion.count or occlusion.sizes"
            )
        regions += [OcclusionRegion(shape, height, width, tuple(p), (rows, cols)) for p in placements]
    return regions


def _all_placements(
    grid: list[tuple[int, int]], count: int, height: int, width: int
) -> list[tuple[tuple[int, int], ...]]:
    """Every set of ``count`` grid corners whose boxes do not overlap (small grids only)."""
    return [
        combo for combo in itertools.combinations(grid, count)
        if not any(_boxes_overlap(a, b, height, width) for a, b in itertools.combinations(combo, 2))
    ]


def _sampled_placements(
    grid: list[tuple[int, int]], count: int, height: int, width: int, wanted: int, rng: np.random.Generator
) -> list[tuple[tuple[int, int], ...]]:
    """Up to ``wanted`` distinct placements drawn lazily: each corner uniform among those still free.

    Never lists the combinations (C(484, 3) = 18.8 million for three 7-pixel boxes on a 28x28
    grid of stride 1); a draw that runs out of free corners is retried, up to 20 tries per wanted.
    """
    corners = np.asarray(grid)  # (G, 2) top-left (row, col)
    found: dict[tuple[tuple[int, int], ...], None] = {}
    for _ in range(20 * wanted):
        free = np.ones(len(corners), dtype=bool)
        chosen: list[tuple[int, int]] = []
        for _ in range(count):
            candidates = np.flatnonzero(free)
            if not len(candidates):
                break
            top, left = corners[rng.choice(candidates)]
            chosen.append((int(top), int(left)))
            free &= (np.abs(corners[:, 0] - top) >= height) | (np.abs(corners[:, 1] - left) >= width)
        if len(chosen) == count:
            found[tuple(sorted(chosen))] = None
            if len(found) == wanted:
                break
    return list(found)


def centred_region(template: OcclusionRegion) -> OcclusionRegion:
    """One region of ``template``'s shape and size in the middle of the image."""
    rows, cols = template.image_size
    corner = ((rows - template.height) // 2, (cols - template.width) // 2)
    return OcclusionRegion(template.shape, template.height, template.width, (corner,), template.image_size)


def occlude(images: torch.Tensor, region: OcclusionRegion, fill: float = 0.0) -> torch.Tensor:
    """Replace the region's pixels in every image (N, C, H, W) by ``fill``."""
    images = check_images(images)
    if tuple(images.shape[2:]) != region.image_size:
        raise DataError(
            f"images of size {tuple(images.shape[2:])} do not match the region's image size "
            f"{region.image_size}"
        )
    return images.masked_fill(region.mask(), fill)


def inpaint(images: torch.Tensor, region: OcclusionRegion, radius: int = 3, method: str = "telea") -> torch.Tensor:
    """Restore the occluded pixels with OpenCV's inpainting, image by image and channel by channel."""
    if method not in INPAINT_METHODS:
        raise ConfigError(f"unknown inpainting method {method!r}; choose telea or ns")
    holes = region.mask().numpy().astype(np.uint8)
    pixels = (check_images(images).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    restored = np.empty_like(pixels)
    for n, c in itertools.product(range(pixels.shape[0]), range(pixels.shape[1])):
        restored[n, c] = cv2.inpaint(pixels[n, c], holes, radius, INPAINT_METHODS[method])
    return torch.from_numpy(restored.astype(np.float32) / 255.0)


def gradient_saliency(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-image saliency (N, H, W): |d true-class logit / d pixel| summed over channels, sum 1."""
    model.eval()
    inputs = check_images(images).clone().requires_grad_(True)
    true_logits = model(inputs).gather(1, labels[:, None]).sum()
    (gradient,) = torch.autograd.grad(true_logits, inputs)
    saliency = gradient.abs().sum(dim=1)
    return saliency / saliency.flatten(1).sum(dim=1).clamp_min(1e-12)[:, None, None]


def box_saliency(boxes: Sequence[Sequence[float]], n_images: int, image_size: tuple[int, int]) -> torch.Tensor:
    """Uniform saliency (N, H, W) over given sensitive boxes (top, left, height, width) as fractions."""
    rows, cols = image_size
    sensitive = torch.zeros(rows, cols)
    for box in boxes:
        if len(box) != 4:
            raise ConfigError(f"a sensitive box is [top, left, height, width] fractions, got {list(box)}")
        top, left, height, width = box
        r0, c0 = round(top * rows), round(left * cols)
        sensitive[r0 : r0 + max(1, round(height * rows)), c0 : c0 + max(1, round(width * cols))] = 1.0
    if sensitive.sum() == 0:
        raise ConfigError("the sensitive boxes cover no pixel; check security.sensitive_boxes")
    return (sensitive / sensitive.sum()).expand(n_images, rows, cols)


def uniform_saliency(n_images: int, image_size: tuple[int, int]) -> torch.Tensor:
    """Every pixel equally sensitive (N, H, W), each image summing to 1: the default when nothing is stated."""
    rows, cols = image_size
    return torch.full((n_images, rows, cols), 1.0 / (rows * cols))


def file_saliency(path: str | Path, n_images: int, image_size: tuple[int, int]) -> torch.Tensor:
    """Sensitivity (N, H, W) from a mask file: ``.npy`` (read without pickle) or a grey PNG, H x W.

    Non-negative values weight the pixels (a 0/1 mask marks the sensitive ones); each image sums to 1.
    """
    path = Path(path)
    try:
        if path.suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        elif path.suffix == ".png":
            from PIL import Image

            with Image.open(path) as picture:
                values = np.asarray(picture.convert("L"), dtype=np.float64) / 255.0
        else:
            raise ConfigError(f"security.sensitive_mask {path}: give a .npy or .png file")
    except (OSError, ValueError) as exc:
        raise DataError(f"security.sensitive_mask {path}: cannot read it ({exc})") from None
    if values.shape != tuple(image_size) or not np.isfinite(values).all() or (values < 0).any():
        raise DataError(f"security.sensitive_mask {path}: expected {image_size[0]}x{image_size[1]} finite "
                        f"non-negative values, got shape {values.shape}")
    if values.sum() == 0:
        raise DataError(f"security.sensitive_mask {path} marks no pixel; mark the sensitive pixels with values > 0")
    sensitive = torch.from_numpy(values / values.sum()).float()
    return sensitive.expand(n_images, *image_size)


def unrestored_share(
    images: torch.Tensor, restored: torch.Tensor, saliency: torch.Tensor, reference: torch.Tensor
) -> float:
    """How much of the sensitive content an inpainter did not restore, in [0, 1].

    Σ s·|x − x̂| / Σ s·|x − r| over every image and pixel (channels summed), with ``s`` the
    sensitivity (N, H, W) and ``r`` the reference an adversary has without the image (the mean
    image, C x H x W): 0 when the inpainter restores the sensitive pixels exactly, 1 when it
    does no better than that reference (capped at 1).
    """
    error = ((images - restored).abs().sum(dim=1) * saliency).sum()
    baseline = ((images - reference).abs().sum(dim=1) * saliency).sum().clamp_min(1e-12)
    return float((error / baseline).clamp(max=1.0))


def covered_saliency(saliency: torch.Tensor, region: OcclusionRegion) -> float:
    """Mean share of each image's saliency mass that the region covers."""
    return float((saliency * region.mask()).flatten(1).sum(dim=1).mean())
