import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.errors import DataError
from fedfleet.privacy.metrics import PSNR_CAP_DB, psnr, ssim


def test_ssim_of_identical_images_is_one(make_images):
    images = make_images(3, (1, 28, 28))
    assert torch.allclose(ssim(images, images), torch.ones(3))


@settings(max_examples=25, deadline=None)
@given(a=st.floats(0, 1), b=st.floats(0, 1))
def test_ssim_of_constant_images_matches_the_closed_form(a, b):
    # constant images: zero variance and covariance, so SSIM is the luminance term alone
    first, second = torch.full((1, 1, 8, 8), a), torch.full((1, 1, 8, 8), b)
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(first, second).item() == pytest.approx(expected, rel=1e-4, abs=1e-5)


def _brute_force_ssim(x: np.ndarray, y: np.ndarray, size: int, sigma: float) -> float:
    """SSIM of two (C, H, W) images window by window: Gaussian-weighted means, variances and
    covariance at every valid position, averaged over positions and channels (Wang et al. 2004)."""
    offsets = np.arange(size) - (size - 1) / 2
    line = np.exp(-(offsets**2) / (2 * sigma**2))
    weights = np.outer(line, line) / np.outer(line, line).sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    channels, height, width = x.shape
    for c in range(channels):
        for i in range(height - size + 1):
            for j in range(width - size + 1):
                a, b = x[c, i : i + size, j : j + size], y[c, i : i + size, j : j + size]
                mu_a, mu_b = (weights * a).sum(), (weights * b).sum()
                var_a, var_b = (weights * (a - mu_a) ** 2).sum(), (weights * (b - mu_b) ** 2).sum()
                cov = (weights * (a - mu_a) * (b - mu_b)).sum()
                values.append((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                              / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


@pytest.mark.parametrize(("shape", "window", "sigma", "size"), [((2, 13, 15), 11, 1.5, 11),
                                                                ((1, 8, 8), 11, 1.5, 7),  # shrunk on digits
                                                                ((3, 10, 9), 5, 1.0, 5)])
def test_ssim_matches_a_brute_force_gaussian_window_reference(make_images, shape, window, sigma, size):
    clear = make_images(3, shape, seed=4)
    noisy = (clear + 0.3 * make_images(3, shape, seed=5) - 0.15).clamp(0, 1)  # correlated, not equal
    images = torch.cat([noisy, make_images(1, shape, seed=6)])  # and one unrelated image
    reference = torch.cat([clear, clear[:1]])
    expected = [_brute_force_ssim(a.double().numpy(), b.double().numpy(), size, sigma)
                for a, b in zip(images, reference, strict=True)]
    assert ssim(images, reference, window_size=window, sigma=sigma).tolist() == pytest.approx(expected, abs=1e-5)
    assert expected[0] > 0.3 > expected[-1]  # the cases differ: related images score higher


def test_ssim_is_symmetric_and_below_one_for_different_images(make_images):
    first, second = make_images(4, seed=1), make_images(4, seed=2)
    assert torch.allclose(ssim(first, second), ssim(second, first))
    assert (ssim(first, second) < 1).all()


def test_inverted_images_have_negative_ssim(make_images):
    images = make_images(4, (1, 16, 16))
    assert (ssim(images, 1 - images) < 0).all()


def test_psnr_matches_its_definition():
    first = torch.zeros(1, 1, 4, 4)
    second = torch.full((1, 1, 4, 4), 0.1)  # MSE 0.01 -> 20 dB
    assert psnr(first, second).item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(first, first).item() == PSNR_CAP_DB


def test_batches_of_different_shapes_are_rejected(make_images):
    with pytest.raises(DataError, match="share one"):
        ssim(make_images(2), make_images(3))
    with pytest.raises(DataError, match="share one"):
        psnr(make_images(2), make_images(2, (1, 4, 4)))
