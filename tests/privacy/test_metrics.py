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
