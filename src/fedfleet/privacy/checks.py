"""Input guards shared by masking and occlusion: image batches must be finite and well shaped."""

from __future__ import annotations

import torch

from fedfleet.errors import DataError


def check_images(images: torch.Tensor, image_shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Return ``images`` as a float32 (N, C, H, W) batch after checking shape and values.

    Parameters
    ----------
    images : torch.Tensor
        A batch (N, C, H, W) of pixels in [0, 1].
    image_shape : tuple of int, optional
        The (C, H, W) the batch must match, e.g. a mask's shape.

    Raises
    ------
    DataError
        If the batch is not 4-D, differs from ``image_shape`` or holds NaN/inf pixels.
    """
    if images.ndim != 4:
        raise DataError(f"images must be a (N, C, H, W) batch, got shape {tuple(images.shape)}")
    if image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape):
        raise DataError(
            f"images of shape {tuple(images.shape[1:])} do not match the mask/region shape "
            f"{tuple(image_shape)}; resize the images or build the mask for this shape"
        )
    if not torch.isfinite(images).all():
        bad = int((~torch.isfinite(images)).sum())
        raise DataError(f"images hold {bad} non-finite pixel(s) (NaN or inf); clean the data first")
    return images.to(torch.float32)
