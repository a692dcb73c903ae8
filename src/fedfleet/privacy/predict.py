"""Recognition with a stored protection: the model folder written by ``privacy mask`` / ``occlude``.

A model folder holds ``model.json`` (architecture, input shape, class names, protection),
``model.safetensors`` (the weights; tensors only, nothing in it runs when loaded) and the
protection: ``key.json`` (the secret mask key, mode 0600) or ``target_region.json``.
:func:`load_protected_model` reads it back and :meth:`ProtectedModel.predict` superimposes
the stored mask (or occludes the stored region) and recognises.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from fedfleet.data.idx import read_idx
from fedfleet.errors import ConfigError, DataError
from fedfleet.json_files import read_json
from fedfleet.models import build_model
from fedfleet.privacy.checks import check_images
from fedfleet.privacy.keys import load_key_file
from fedfleet.privacy.occlusion import OcclusionRegion, occlude
from fedfleet.privacy.training import predict_proba

MODEL_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
KEY_FILE = "key.json"
REGION_FILE = "target_region.json"
FORMAT = "fedfleet-privacy-model/1"
Protect = Callable[[torch.Tensor], torch.Tensor]


def save_model(model: nn.Module, out_dir: Path, *, architecture: str, input_shape: tuple[int, ...],
               classes: tuple[str, ...], protection: str, fill: float = 0.0) -> None:
    """Write ``model.safetensors`` and ``model.json`` into ``out_dir``.

    Parameters
    ----------
    model : nn.Module
        The trained recognition model (built by :func:`fedfleet.models.build_model`).
    architecture : str
        Its model name.
    input_shape : tuple of int
        One image's (C, H, W).
    classes : tuple of str
        Class names, index = label.
    protection : {"mask", "occlusion"}
        Which protection file the folder holds beside the model.
    fill : float
        Pixel value of occluded pixels (occlusion only).
    """
    save_file({name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()},
              str(out_dir / WEIGHTS_FILE))
    manifest = {"format": FORMAT, "architecture": architecture, "input_shape": list(input_shape),
                "classes": list(classes), "protection": protection, "fill": fill}
    (out_dir / MODEL_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


@dataclass(frozen=True)
class ProtectedModel:
    """A recognition model with the protection it was trained under."""

    model: nn.Module
    input_shape: tuple[int, ...]
    classes: tuple[str, ...]
    protect: Protect  # clear images (N, C, H, W) -> protected images, as in training

    def predict(self, images: torch.Tensor) -> np.ndarray:
        """Labels of clear ``images`` (N, C, H, W): protect them, then recognise."""
        images = check_images(images, self.input_shape)
        return predict_proba(self.model, self.protect(images)).argmax(dim=1).numpy()


def _manifest(folder: Path) -> dict[str, Any]:
    path = folder / MODEL_FILE
    if not folder.is_dir():
        raise DataError(f"model folder {folder}: no such folder; give the --out folder of privacy mask or occlude")
    raw = read_json(path, f"{folder} is not a privacy model folder (no {MODEL_FILE}); give the --out folder of "
                          "privacy mask or occlude", "cannot read it", "rerun the job that wrote it")
    fields = {"format": str, "architecture": str, "input_shape": list, "classes": list, "protection": str}
    if not isinstance(raw, dict) or any(not isinstance(raw.get(k), t) for k, t in fields.items()):
        raise DataError(f"{path} lacks or mistypes one of {', '.join(fields)}; rerun the job that wrote it")
    if raw["format"] != FORMAT:
        raise DataError(f"{path} has format {raw['format']!r}, expected {FORMAT!r}; rerun the job that wrote it")
    return raw


def _weights(folder: Path, model: nn.Module) -> nn.Module:
    path = folder / WEIGHTS_FILE
    try:
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise DataError(f"{folder} has no {WEIGHTS_FILE}; rerun the job that wrote it") from None
    except (OSError, SafetensorError) as exc:
        raise DataError(f"{path}: cannot read the weights ({exc}); the file is corrupt") from None
    try:
        model.load_state_dict(tensors)
    except RuntimeError:
        raise DataError(f"{path} does not fit the architecture in {MODEL_FILE}; rerun the job that wrote it") from None
    if not all(torch.isfinite(t).all() for t in tensors.values()):
        raise DataError(f"{path}: weights hold NaN or infinite values; rerun the job that wrote it")
    return model.eval()


def _region(folder: Path, fill: float) -> Protect:
    path = folder / REGION_FILE
    try:
        raw = json.loads(path.read_text())
        region = OcclusionRegion(raw["shape"], int(raw["height"]), int(raw["width"]),
                                 tuple((int(t), int(c)) for t, c in raw["corners"]),
                                 (int(raw["image_size"][0]), int(raw["image_size"][1])))
    except FileNotFoundError:
        raise DataError(f"{folder} has no {REGION_FILE}; rerun privacy occlude") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a valid region ({exc}); rerun privacy occlude") from None
    return lambda images: occlude(images, region, fill)


def load_protected_model(folder: str | Path, public: Callable[[], torch.Tensor] | None = None) -> ProtectedModel:
    """Read a model folder written by ``privacy mask`` or ``privacy occlude``.

    Parameters
    ----------
    folder : path
        The job's output folder.
    public : callable, optional
        Returns the job's public pool, needed only for ``mix`` keys (their pattern is a public image).

    Raises
    ------
    DataError
        A missing, corrupt or mismatched file, named in the message.
    """
    folder = Path(folder)
    manifest = _manifest(folder)
    shape = tuple(int(s) for s in manifest["input_shape"])
    classes = tuple(str(c) for c in manifest["classes"])
    try:
        model = build_model(manifest["architecture"], shape, len(classes))
    except (ConfigError, KeyError, ValueError) as exc:
        raise DataError(f"{folder / MODEL_FILE}: cannot build {manifest['architecture']!r} ({exc})") from None
    model = _weights(folder, model)
    if manifest["protection"] == "mask":
        protect = load_key_file(folder / KEY_FILE).protector(shape, public)
    elif manifest["protection"] == "occlusion":
        protect = _region(folder, float(manifest.get("fill", 0.0)))
    else:
        raise DataError(f"{folder / MODEL_FILE}: unknown protection {manifest['protection']!r}")
    return ProtectedModel(model, shape, classes, protect)


def _png_folder(folder: Path, shape: tuple[int, ...]) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    files = sorted(folder.glob("*.png"))
    if not files:
        raise DataError(f"{folder} holds no .png files; give an IDX file or a folder of PNG images")
    channels, height, width = shape
    images = []
    for path in files:
        try:
            with Image.open(path) as picture:
                pixels = np.asarray(picture.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255.0
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"{path}: not a readable PNG image ({exc})") from None
        if pixels.shape[:2] != (height, width):
            raise DataError(f"{path} is {pixels.shape[1]}x{pixels.shape[0]} pixels; the model takes "
                            f"{width}x{height}, resize it first")
        images.append(pixels[None] if channels == 1 else pixels.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(images))


def read_images(path: str | Path, shape: tuple[int, ...]) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] from an IDX file (uint8 or float) or a folder of PNGs.

    Raises
    ------
    DataError
        A missing or corrupt file, or images of another size than ``shape`` (C, H, W).
    """
    path = Path(path)
    if path.is_dir():
        return _png_folder(path, shape)
    array = read_idx(path)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or tuple(array.shape[1:]) != tuple(shape):
        raise DataError(f"{path} holds images of shape {tuple(array.shape[1:])}; the model takes {tuple(shape)} "
                        "(channels, height, width)")
    images = torch.from_numpy(array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 1.0))
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise DataError(f"{path}: float pixels must be finite and in [0, 1]")
    return images


def read_labels(path: str | Path, n_images: int, n_classes: int) -> torch.Tensor:
    """Integer labels (N,) from an IDX labels file, checked against the images and classes."""
    labels = read_idx(path)
    if labels.ndim != 1 or len(labels) != n_images:
        raise DataError(f"{path} holds {labels.shape} labels for {n_images} images; give one label per image")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{path}: labels must lie in 0..{n_classes - 1}")
    return torch.from_numpy(labels.astype(np.int64))
