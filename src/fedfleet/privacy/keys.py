"""Key files and per-image keys.

``keys: shared`` is the patent's one mask for every image: ``key.json`` holds the
:class:`~fedfleet.privacy.masks.MaskKey`. ``keys: per_image`` gives every image its own
mask of the family (InstaHide-style): ``key.json`` holds the family's public parameters and
a 256-bit master secret from :mod:`secrets`; image ``x``'s key seed is
HMAC-SHA256(master, the bytes of ``x`` as float32), so the file stays small, the data owner
can re-derive any image's key, and two different images never share a mask (identical
images do: the encryption is deterministic).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedfleet.errors import ConfigError, DataError
from fedfleet.json_files import read_json
from fedfleet.privacy.checks import check_images
from fedfleet.privacy.masks import Mask, MaskKey, make_pattern
from fedfleet.privacy.superimpose import superimpose

Protect = Callable[[torch.Tensor], torch.Tensor]
PublicPool = Callable[[], torch.Tensor] | None


@dataclass(frozen=True)
class PerImageMask(Mask):
    """A family of masks, one per image, derived from a master secret.

    ``key`` holds the family, mode and public parameters (its seed is unused); ``pattern``
    is only a zero placeholder of the image shape. :meth:`apply` encrypts each image with
    its own pattern; ``public`` is the mixing pool of the ``mix`` family.
    """

    master: bytes = b""
    public: torch.Tensor | None = None

    @classmethod
    def fresh(cls, template: MaskKey, shape: tuple[int, ...], public: torch.Tensor | None = None) -> PerImageMask:
        """A new master secret (256 bits from :mod:`secrets`) for ``template``'s family."""
        return cls(template, torch.zeros(shape), secrets.token_bytes(32), public)

    def key_for(self, image: torch.Tensor) -> MaskKey:
        """The key of one image (C, H, W)."""
        digest = hmac.new(self.master, image.contiguous().numpy().astype(np.float32).tobytes(), hashlib.sha256)
        return self.key.with_seed(int.from_bytes(digest.digest()[:16], "big"))

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Encrypt every image (N, C, H, W) with its own mask."""
        images = check_images(images, self.shape)
        k = self.key
        patterns = torch.stack([make_pattern(self.key_for(x), self.shape, self.public) for x in images]) \
            if len(images) else images
        return superimpose(images, patterns, k.mode, k.strength, k.weight)

    def invert(self, encrypted: torch.Tensor) -> torch.Tensor:
        raise ConfigError("per-image ciphertexts are inverted with the image's own key; derive it from the clear image")

    def to_dict(self) -> dict[str, Any]:
        """The key file's content: the master secret and the family's public parameters."""
        return {"keys": "per_image", "master": self.master.hex(), **self.key.public_dict()}


def key_file_content(mask: Mask) -> dict[str, Any]:
    """What ``key.json`` holds for ``mask`` (shared or per-image): secret, never shown in reports."""
    return mask.to_dict() if isinstance(mask, PerImageMask) else mask.key.to_dict()


@dataclass(frozen=True)
class KeyFile:
    """A read ``key.json``: builds the encryption it describes."""

    raw: dict[str, Any]
    path: Path

    def protector(self, shape: tuple[int, ...], public: PublicPool = None) -> Protect:
        """The batch transform clear images (N, C, H, W) -> ciphertexts of this key."""
        raw = dict(self.raw)
        per_image = raw.pop("keys", "shared") == "per_image"
        try:
            master = bytes.fromhex(raw.pop("master")) if per_image else b""
            key = MaskKey.from_dict({**raw, "seed": 0} if per_image else raw)
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise DataError(f"{self.path}: not a valid mask key ({exc}); rerun privacy mask") from None
        pool = public() if key.family == "mix" and public is not None else None
        if key.family == "mix" and pool is None:
            raise DataError(f"{self.path}: a mix key needs the job's public pool; keep config.yaml beside it")
        mask = (PerImageMask(key, torch.zeros(shape), master, pool) if per_image
                else Mask.from_key(key, shape, pool))
        return mask.apply


def load_key_file(path: Path) -> KeyFile:
    """Read ``key.json``; a missing or corrupt file is a one-line DataError."""
    raw = read_json(path, f"{path.parent} has no {path.name} (the secret mask key); copy it back beside the "
                          "model or rerun privacy mask", "cannot read the key", "rerun privacy mask")
    if not isinstance(raw, dict):
        raise DataError(f"{path}: not a mask key; rerun privacy mask")
    return KeyFile(raw, path)
