"""Image similarity: SSIM (Wang et al. 2004, Gaussian window) and PSNR, in torch.

Both compare batches (N, C, H, W) with pixels in [0, 1] image by image and return one
value per image; average them for a data-set figure.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fedfleet.errors import DataError

_K1, _K2 = 0.01, 0.03
PSNR_CAP_DB = 100.0  # PSNR of identical images (MSE floor 1e-10), so it stays finite in JSON


def _check_pair(first: torch.Tensor, second: torch.Tensor) -> None:
    if first.shape != second.shape or first.ndim != 4:
        raise DataError(
            f"image batches must share one (N, C, H, W) shape, got {tuple(first.shape)} "
            f"and {tuple(second.shape)}"
        )


def _gaussian_line(size: int, sigma: float) -> torch.Tensor:
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    line = torch.exp(-(offsets**2) / (2 * sigma**2))
    return (line / line.sum()).to(torch.float32)


def _separable_blur(images: torch.Tensor, line: torch.Tensor) -> torch.Tensor:
    """Valid-mode Gaussian blur of (B, C, H, W) as a horizontal then a vertical 1-D pass, per channel."""
    channels, size = images.shape[1], line.numel()
    rows = line.view(1, 1, 1, size).expand(channels, 1, 1, size)
    columns = line.view(1, 1, size, 1).expand(channels, 1, size, 1)
    return F.conv2d(F.conv2d(images, rows, groups=channels), columns, groups=channels)


def ssim(
    first: torch.Tensor, second: torch.Tensor, window_size: int = 11, sigma: float = 1.5,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Structural similarity per image, averaged over valid window positions and channels.

    The window shrinks to the largest odd size that fits small images (7 for 8x8 digits). The
    Gaussian is applied as two 1-D passes in float32.

    Parameters
    ----------
    first, second : torch.Tensor
        Batches (N, C, H, W).
    window_size : int
        Side of the Gaussian window.
    sigma : float
        Standard deviation of the window.
    data_range : float
        Pixel range (1.0 for [0, 1] images).

    Returns
    -------
    torch.Tensor
        Shape (N,), 1.0 for identical images.
    """
    _check_pair(first, second)
    height, width = first.shape[2:]
    size = min(window_size, height, width)
    size -= 1 - size % 2  # odd
    line = _gaussian_line(size, sigma)
    x, y = first.to(torch.float32), second.to(torch.float32)
    # (co)variances from images centred on their own means: shift-invariant, and no float32
    # cancellation in E[x^2] - E[x]^2 for nearly flat images
    shift_x, shift_y = x.mean(dim=(2, 3), keepdim=True), y.mean(dim=(2, 3), keepdim=True)
    cx, cy = x - shift_x, y - shift_y
    mu_cx, mu_cy, mean_xx, mean_yy, mean_xy = _separable_blur(
        torch.cat([cx, cy, cx * cx, cy * cy, cx * cy]), line).chunk(5)
    var_x = mean_xx - mu_cx**2
    var_y = mean_yy - mu_cy**2
    cov = mean_xy - mu_cx * mu_cy
    mu_x, mu_y = mu_cx + shift_x, mu_cy + shift_y
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    score = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return score.flatten(1).mean(dim=1).to(torch.float32)


def psnr(first: torch.Tensor, second: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (capped at ``PSNR_CAP_DB``)."""
    _check_pair(first, second)
    mse = ((first.to(torch.float64) - second.to(torch.float64)) ** 2).flatten(1).mean(dim=1)
    value = 10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-10))
    return value.clamp_max(PSNR_CAP_DB).to(torch.float32)
