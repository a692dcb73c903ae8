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


def _gaussian_window(size: int, sigma: float, channels: int) -> torch.Tensor:
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    line = torch.exp(-(offsets**2) / (2 * sigma**2))
    line = line / line.sum()
    window = torch.outer(line, line)
    return window.expand(channels, 1, size, size).contiguous()


def ssim(
    first: torch.Tensor, second: torch.Tensor, window_size: int = 11, sigma: float = 1.5,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Structural similarity per image, averaged over valid window positions and channels.

    The window shrinks to the largest odd size that fits small images (7 for 8x8 digits).

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
    channels, height, width = first.shape[1:]
    size = min(window_size, height, width)
    size -= 1 - size % 2  # odd
    window = _gaussian_window(size, sigma, channels)
    x, y = first.to(torch.float64), second.to(torch.float64)

    def blur(image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(image, window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    score = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return score.flatten(1).mean(dim=1).to(torch.float32)


def psnr(first: torch.Tensor, second: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (capped at ``PSNR_CAP_DB``)."""
    _check_pair(first, second)
    mse = ((first.to(torch.float64) - second.to(torch.float64)) ** 2).flatten(1).mean(dim=1)
    value = 10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-10))
    return value.clamp_max(PSNR_CAP_DB).to(torch.float32)
