"""One party's files: its model part, and its checkpoint for resume.

Each party writes only what it holds, in its own folder::

    model.safetensors             the party's weights (its bottom; the active party's head too)
    checkpoint/state.safetensors  weights ("model.*") and SGD momentum buffers ("momentum.<i>")
    checkpoint/state.json         epoch and whatever else the party keeps (JSON only)

Loading never executes code: safetensors and JSON only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from fedfleet.errors import CheckpointError

MODEL_FILE = "model.safetensors"
CHECKPOINT_DIR = "checkpoint"


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    partial = path.with_name(path.name + ".partial")
    save_file({name: tensor.detach().contiguous() for name, tensor in tensors.items()}, str(partial))
    os.replace(partial, path)


def save_part(directory: Path, module: nn.Module, optimizer: torch.optim.Optimizer | None,
              state: dict[str, Any]) -> None:
    """Write ``module``'s weights to ``directory/model.safetensors`` and a checkpoint beside it."""
    folder = directory / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    weights = dict(module.state_dict())
    tensors = {f"model.{name}": value for name, value in weights.items()}
    if optimizer is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for i, param in enumerate(params):
            buffer = optimizer.state.get(param, {}).get("momentum_buffer")
            if buffer is not None:
                tensors[f"momentum.{i}"] = buffer
    _atomic_save(tensors, folder / "state.safetensors")
    partial = folder / "state.json.partial"
    partial.write_text(json.dumps(state))
    os.replace(partial, folder / "state.json")
    _atomic_save(weights, directory / MODEL_FILE)


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing; train this party first (or drop --resume)") from None
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is damaged ({exc}); retrain this party") from None


def _load_weights(module: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    expected = module.state_dict()
    if set(weights) != set(expected) or any(weights[k].shape != expected[k].shape for k in expected):
        raise CheckpointError(f"{path} holds weights for a different model than this party's; "
                              "use the same config that trained it")
    module.load_state_dict(weights)


def load_part(directory: Path, module: nn.Module, optimizer: torch.optim.Optimizer | None,
              checkpoint: bool = True) -> dict[str, Any]:
    """Load the party's checkpoint (``checkpoint=True``) or its model file into ``module`` (and
    ``optimizer``'s momentum buffers); returns the checkpoint's JSON state ({} for a model file).

    Raises
    ------
    CheckpointError
        If a file is missing, damaged, or holds another model's weights.
    """
    if not checkpoint:
        path = directory / MODEL_FILE
        _load_weights(module, _read(path), path)
        return {}
    path = directory / CHECKPOINT_DIR / "state.safetensors"
    tensors = _read(path)
    _load_weights(module, {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}, path)
    if optimizer is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for i, param in enumerate(params):
            if f"momentum.{i}" in tensors:
                optimizer.state[param]["momentum_buffer"] = tensors[f"momentum.{i}"].clone()
    try:
        state: dict[str, Any] = json.loads((directory / CHECKPOINT_DIR / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{directory / CHECKPOINT_DIR / 'state.json'} is missing or damaged ({exc})") from None
    return state
