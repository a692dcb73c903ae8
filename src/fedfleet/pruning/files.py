"""Load the ``model.safetensors`` of a pruned run into its smaller architecture."""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from fedfleet.pruning.controller import rebuild
from fedfleet.pruning.structure import PruningError, conv_sites


def load_pruned_model(path: str | Path, model: nn.Sequential, input_shape: tuple[int, ...]) -> nn.Sequential:
    """The model saved at ``path``, in the architecture its tensors have.

    Parameters
    ----------
    path : path
        A run's ``model.safetensors`` (pruned or not).
    model : nn.Sequential
        The run's unpruned architecture, e.g. ``build_model(config.model.name, shape, classes)``.
    input_shape : tuple of int
        One sample's shape, e.g. ``(1, 28, 28)``.

    Raises
    ------
    PruningError
        The file cannot be read or does not fit ``model``'s architecture.
    """
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise PruningError(f"cannot read the model file {path} ({exc}); pass a run's model.safetensors") from None
    channels = {}
    for site in conv_sites(model, input_shape):
        weight = tensors.get(f"{site.index}.weight")
        if weight is None:
            raise PruningError(f"{path} has no tensor {site.index}.weight: it is not a model of this architecture")
        conv = model[site.index]
        assert isinstance(conv, nn.Conv2d)
        available = conv.out_channels
        if not 1 <= weight.shape[0] <= available:
            raise PruningError(f"{path} does not fit the given architecture: layer {site.index} has "
                               f"{weight.shape[0]} filters there, at most {available} here")
        channels[site.index] = int(weight.shape[0])
    pruned = rebuild(model, channels, input_shape)
    try:
        pruned.load_state_dict(tensors)
    except RuntimeError as exc:
        problems = " ".join(line.strip() for line in str(exc).strip().splitlines()[1:3])
        raise PruningError(f"{path} does not fit the given architecture: {problems[:300]}") from None
    return pruned
