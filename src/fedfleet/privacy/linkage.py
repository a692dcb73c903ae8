"""Re-identification: can an attacker match each protected image to its original among N?

Threat model: the adversary holds a gallery of N original images (a leaked photo set, public
profiles) and sees protected versions of some of them (encrypted or occluded); it wants to know
which original each protected image came from. It compares them, pixel by pixel, through a
transform (identity, or a key-invariant one from :mod:`fedfleet.privacy.invariants`), after
removing each image's mean and scale, and links each protected image to the nearest original.
Pixels where ``ignore`` is set (e.g. an occluded region, which the attacker can see) are left
out of the comparison. Chance is 1 / N.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def linkage_rate(
    protected: torch.Tensor,
    originals: torch.Tensor,
    transform: Callable[[torch.Tensor], torch.Tensor] = lambda images: images,
    ignore: torch.Tensor | None = None,
) -> float:
    """Share of ``protected[i]`` whose nearest original (after ``transform``) is ``originals[i]``.

    Parameters
    ----------
    protected : torch.Tensor
        (N, C, H, W) protected versions of ``originals``, in the same order.
    originals : torch.Tensor
        (N, C, H, W) the gallery.
    transform : callable
        Applied to both before comparing.
    ignore : torch.Tensor, optional
        (C, H, W) boolean: pixels left out of the comparison.
    """
    if protected.shape != originals.shape or protected.ndim != 4:
        raise ValueError(f"protected and originals must be two (N, C, H, W) batches of one shape, got "
                         f"{tuple(protected.shape)} and {tuple(originals.shape)}")
    keep = torch.ones(protected.shape[1:], dtype=torch.bool) if ignore is None else ~ignore
    queries = _standardise(transform(protected.double())[:, keep])
    gallery = _standardise(transform(originals.double())[:, keep])
    nearest = torch.cdist(queries, gallery).argmin(dim=1)
    return float((nearest == torch.arange(len(protected))).double().mean())


def _standardise(rows: torch.Tensor) -> torch.Tensor:
    centred = rows - rows.mean(dim=1, keepdim=True)
    return centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-12)
