"""Encryption masks generated from seeds: a mask is fully described by its key.

A :class:`MaskKey` (family, seed, superimposing mode and its parameters) regenerates the
same pattern every time, so the key is what is stored and shared, never the pixels. The
seed of a defender's key comes from :func:`secret_keys` (``secrets``, 128 bits), never from
the job seed; reports name a key by family, mode and index (:attr:`MaskKey.name`,
:meth:`MaskKey.public_dict`), never by its seed.

Families (patterns have the image's shape (C, H, W)):

- ``sign``: independent random ±1 per pixel;
- ``noise``: standard normal noise per pixel (scaled by the key's ``strength`` when added);
- ``block``: random ±1 constant over ``block`` x ``block`` tiles;
- ``checkerboard``: alternating ±1 tiles of side ``block`` with a seeded phase;
- ``mix``: a public image chosen by the seed (InstaHide-like mixing, Huang et al. 2020).
  A ``mix`` key alone does not fix its pattern: the seed picks an index into the public
  pool, so the same pool (same images in the same order) is needed to regenerate it.
  ``mix`` with ``sign_flip`` is refused: a public image has no negative pixels, so the
  "flip" would leave the image unchanged (and set pixels where the public image is 0 to 0.5).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch

from fedfleet.errors import ConfigError, DataError
from fedfleet.privacy.checks import check_images
from fedfleet.privacy.superimpose import MODES, invert, superimpose

Family = Literal["sign", "noise", "block", "checkerboard", "mix"]
FAMILIES: tuple[str, ...] = ("sign", "noise", "block", "checkerboard", "mix")


@dataclass(frozen=True)
class MaskKey:
    """Everything needed to regenerate a mask and superimpose it.

    Attributes
    ----------
    family : str
        Pattern family: sign | noise | block | checkerboard | mix.
    seed : int
        Seed of the pattern; the secret part of the key. For ``mix`` it picks an image
        of the public pool, so the pattern also depends on that pool.
    mode : str
        Superimposing mode: add_clip | multiply | sign_flip | blend.
    strength : float
        Amplitude of the pattern in ``add_clip``.
    weight : float
        Weight of the pattern in ``blend``, in [0, 1).
    block : int
        Tile side in pixels for ``block`` and ``checkerboard``.
    index : int
        Position of the key among the job's candidates: the public label of the key.
    """

    family: str
    seed: int
    mode: str
    strength: float = 0.5
    weight: float = 0.5
    block: int = 2
    index: int = 0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"unknown mask family {self.family!r}; choose one of: {', '.join(FAMILIES)}")
        if self.mode not in MODES:
            raise ConfigError(f"unknown superimposing mode {self.mode!r}; choose one of: {', '.join(MODES)}")
        if not 0.0 <= self.weight < 1.0:
            raise ConfigError(f"mask weight must be in [0, 1), got {self.weight}")
        if self.mode == "add_clip" and self.strength == 0.0:
            raise ConfigError("mask strength 0 makes add_clip the identity (no encryption); use a strength > 0")
        if self.mode == "blend" and self.weight == 0.0:
            raise ConfigError("mask weight 0 makes blend the identity (no encryption); use a weight in (0, 1)")
        if self.block < 1:
            raise ConfigError(f"mask block must be >= 1 pixel, got {self.block}")
        if self.family == "mix" and self.mode == "sign_flip":
            raise ConfigError(
                "mask family 'mix' cannot use mode 'sign_flip': a public image has no negative "
                "pixels, so nothing would be flipped; use blend, add_clip or multiply"
            )

    @property
    def name(self) -> str:
        """Public label, e.g. ``sign/sign_flip#3`` (family, mode, candidate index; no secret)."""
        return f"{self.family}/{self.mode}#{self.index}"

    def with_seed(self, seed: int) -> MaskKey:
        """The same family and mode with another seed (what an attacker can draw)."""
        return MaskKey(self.family, seed, self.mode, self.strength, self.weight, self.block, self.index)

    def to_dict(self) -> dict[str, Any]:
        """Every field, the secret seed included: for the key file only."""
        return asdict(self)

    def public_dict(self) -> dict[str, Any]:
        """Every field except the secret seed: what summaries and reports may show."""
        return {k: v for k, v in asdict(self).items() if k != "seed"}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MaskKey:
        return cls(**raw)


def _tiles(rng: np.random.Generator, shape: tuple[int, int, int], block: int) -> np.ndarray:
    channels, height, width = shape
    rows, cols = -(-height // block), -(-width // block)
    coarse = rng.choice([-1.0, 1.0], size=(channels, rows, cols))
    return np.kron(coarse, np.ones((1, block, block)))[:, :height, :width]


def _checkerboard(rng: np.random.Generator, shape: tuple[int, int, int], block: int) -> np.ndarray:
    channels, height, width = shape
    dy, dx = rng.integers(0, 2 * block, size=2)
    rows = (np.arange(height) + dy) // block
    cols = (np.arange(width) + dx) // block
    board = np.where((rows[:, None] + cols[None, :]) % 2 == 0, 1.0, -1.0)
    return np.broadcast_to(board, (channels, height, width)).copy()


def make_pattern(
    key: MaskKey, shape: tuple[int, ...], public: torch.Tensor | None = None
) -> torch.Tensor:
    """Regenerate the pattern of ``key`` for images of ``shape`` (C, H, W).

    Parameters
    ----------
    key : MaskKey
        The mask's key.
    shape : tuple of int
        Image shape (C, H, W).
    public : torch.Tensor, optional
        Public images (N, C, H, W) to mix with; required for the ``mix`` family.

    Returns
    -------
    torch.Tensor
        float32 pattern of shape (C, H, W).
    """
    if len(shape) != 3:
        raise DataError(f"mask shape must be (C, H, W), got {tuple(shape)}")
    channels, height, width = (int(s) for s in shape)
    rng = np.random.default_rng(key.seed)
    if key.family == "sign":
        pattern = rng.choice([-1.0, 1.0], size=(channels, height, width))
    elif key.family == "noise":
        pattern = rng.standard_normal((channels, height, width))
    elif key.family == "block":
        pattern = _tiles(rng, (channels, height, width), key.block)
    elif key.family == "checkerboard":
        pattern = _checkerboard(rng, (channels, height, width), key.block)
    else:
        if public is None or len(public) == 0:
            raise DataError("the 'mix' mask family needs public images to mix with; pass `public`")
        check_images(public, (channels, height, width))
        return public[int(rng.integers(len(public)))].clone()
    return torch.from_numpy(pattern.astype(np.float32))


@dataclass(frozen=True)
class Mask:
    """A key with its regenerated pattern, ready to superimpose.

    Attributes
    ----------
    key : MaskKey
        The stored description of the mask.
    pattern : torch.Tensor
        The (C, H, W) pattern regenerated from the key.
    """

    key: MaskKey
    pattern: torch.Tensor

    @classmethod
    def from_key(cls, key: MaskKey, shape: tuple[int, ...], public: torch.Tensor | None = None) -> Mask:
        return cls(key, make_pattern(key, shape, public))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.pattern.shape)

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Encrypt a batch (N, C, H, W) by superimposing this mask."""
        images = check_images(images, self.shape)
        return superimpose(images, self.pattern, self.key.mode, self.key.strength, self.key.weight)

    def invert(self, encrypted: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`apply` with the key (exact except where add_clip clipped)."""
        encrypted = check_images(encrypted, self.shape)
        return invert(encrypted, self.pattern, self.key.mode, self.key.strength, self.key.weight)


def expand_keys(
    family: str,
    mode: str,
    count: int,
    rng: np.random.Generator,
    *,
    strength: float = 0.5,
    weight: float = 0.5,
    block: int = 2,
    exclude: Collection[int] = (),
) -> list[MaskKey]:
    """``count`` keys of one family and mode with distinct seeds drawn from ``rng``.

    Seeds in ``exclude`` are never returned (the attacker excludes its target's seed).
    """
    banned = {int(s) for s in exclude}
    seeds = rng.choice(2**31 - 1, size=count + len(banned), replace=False)
    kept = [int(s) for s in seeds if int(s) not in banned][:count]
    return [MaskKey(family, s, mode, strength, weight, block) for s in kept]


def secret_keys(
    family: str,
    mode: str,
    count: int,
    *,
    first_index: int = 0,
    strength: float = 0.5,
    weight: float = 0.5,
    block: int = 2,
) -> list[MaskKey]:
    """``count`` keys of one family and mode with 128-bit seeds from :mod:`secrets`.

    The seeds never depend on a job seed, so publishing the job's config reveals nothing
    about the keys. Keys are labelled ``first_index``, ``first_index + 1``, ...
    """
    return [MaskKey(family, secrets.randbits(128), mode, strength, weight, block, first_index + i)
            for i in range(count)]


def encrypt_with_any(
    masks: Sequence[Mask], rng: torch.Generator
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A batch transform that encrypts every image with a mask drawn uniformly from ``masks``."""

    def transform(images: torch.Tensor) -> torch.Tensor:
        choice = torch.randint(len(masks), (len(images),), generator=rng)
        out = torch.empty_like(images)
        for index, mask in enumerate(masks):
            chosen = choice == index
            if chosen.any():
                out[chosen] = mask.apply(images[chosen])
        return out

    return transform
