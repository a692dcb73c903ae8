"""Per-layer profiles of a network: FLOPs, bytes and measured time, from torch or from a table.

A profile is what the placement cost model knows about each layer, per training sample:
training FLOPs (forward + backward), parameter bytes, output-activation bytes (what
crosses a stage boundary and what is kept for the backward pass), bytes all-reduced per
batch by data parallelism, and optionally the measured seconds on the reference CPU.
"""

from __future__ import annotations

import csv
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fedfleet.config import format_validation_error, read_yaml
from fedfleet.errors import ConfigError
from fedfleet.placement.catalog import JobSpec
from fedfleet.threads import torch_threads

# torch module class → layer kind; device types may run some kinds at lower efficiency.
_KIND_BY_MODULE: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.Embedding, "embedding"),
    (nn.EmbeddingBag, "embedding"),
    (nn.Linear, "dense"),
    (nn.Conv1d, "conv"),
    (nn.Conv2d, "conv"),
    (nn.MultiheadAttention, "attention"),
)


class LayerProfile(BaseModel):
    """One layer's costs per training sample (a row of a profile table)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    kind: str = "dense"  # dense | conv | embedding | attention | elementwise ...
    flops: float = Field(ge=0)  # forward + backward FLOPs per sample
    param_bytes: float = Field(0.0, ge=0)  # weights held by every instance running the layer
    activation_bytes: float = Field(ge=0)  # output activation per sample (sent and kept)
    sync_bytes: float | None = Field(None, ge=0)  # all-reduced per batch; None = param_bytes
    ref_time_s: float | None = Field(None, ge=0)  # measured s/sample on the reference CPU

    @property
    def gradient_bytes(self) -> float:
        """Bytes each data-parallel instance all-reduces per batch for this layer."""
        return self.param_bytes if self.sync_bytes is None else self.sync_bytes


@dataclass(frozen=True)
class ModelProfile:
    """An ordered chain of layer profiles.

    Parameters
    ----------
    name : str
        Model name, shown in plans.
    layers : tuple of LayerProfile
        Layers in forward order; a stage is a contiguous run of them.
    """

    name: str
    layers: tuple[LayerProfile, ...]

    def __post_init__(self) -> None:
        if not self.layers:
            raise ConfigError(f"profile {self.name!r} has no layers; give at least one row")

    @property
    def has_measured_times(self) -> bool:
        """True when every layer carries a reference-CPU time."""
        return all(layer.ref_time_s is not None for layer in self.layers)


def layer_kind(module: nn.Module) -> str:
    """The cost-model kind of a torch module (``elementwise`` when unknown)."""
    for module_type, kind in _KIND_BY_MODULE:
        if isinstance(module, module_type):
            return kind
    return "elementwise"


# Untimed passes before the timed ones (allocator and kernel caches warm up).
WARMUP_PASSES = 2


def _train_pass(layer: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """One forward pass and, when anything needs a gradient, its backward pass."""
    output = layer(inputs)
    if output.requires_grad:
        output.sum().backward()
    return output


def _median_train_seconds(layer: nn.Module, inputs: torch.Tensor, repeats: int) -> float:
    """Median CPU seconds of ``repeats`` training passes, after :data:`WARMUP_PASSES`.

    CPU time of this process, not wall time: time the core spends on other processes is
    not the layer's; the median drops the passes that cache or frequency effects disturb.
    """
    for _ in range(WARMUP_PASSES):
        _train_pass(layer, inputs)
    timings = []
    for _ in range(repeats):
        started = time.process_time()
        _train_pass(layer, inputs)
        timings.append(time.process_time() - started)
    return statistics.median(timings)


def profile_torch_model(
    model: nn.Module,
    input_shape: tuple[int, ...],
    name: str = "model",
    batch_size: int = JobSpec().batch_size,
    repeats: int = 21,
    seed: int = 0,
) -> ModelProfile:
    """Profile each child of a ``nn.Sequential`` with a traced forward and backward pass.

    Parameters
    ----------
    model : nn.Sequential
        The network; its direct children are the layers placement may split between.
    input_shape : tuple of int
        One sample's shape (without the batch axis).
    name : str
        Profile name.
    batch_size : int
        Samples in the traced batch: the job's batch size, by default that of the
        default job (:class:`~fedfleet.placement.catalog.JobSpec`, 512); per-sample times
        depend on it, so give ``catalog.job.batch_size`` for another job. Every figure is
        divided back to one sample.
    repeats : int
        Timed forward+backward passes per layer; their median CPU time is kept.
    seed : int
        Seed of the random input batch.

    Returns
    -------
    ModelProfile
        FLOPs from ``torch.utils.flop_counter`` (forward + backward, without the input
        gradient of the layers before the first one with parameters: training never
        computes it), parameter and output-activation bytes, and measured seconds per
        sample on one core of this CPU (the reference device that catalog ``speed``
        values are relative to).
    """
    if not isinstance(model, nn.Sequential):
        raise ConfigError(f"model {name!r} is not an nn.Sequential; profile it layer by layer as a table")
    generator = torch.Generator().manual_seed(seed)
    activations = torch.rand(batch_size, *input_shape, generator=generator)  # (B, *input_shape)
    with torch_threads(1):  # one core: steady timings on a shared machine
        layers = _profile_layers(model, activations, repeats)
    model.zero_grad(set_to_none=True)
    return ModelProfile(name=name, layers=tuple(layers))


def _profile_layers(model: nn.Sequential, activations: torch.Tensor, repeats: int) -> list[LayerProfile]:
    batch_size = activations.shape[0]
    layers = []
    trained_before = False  # does a layer before this one have parameters to train?
    for index, layer in enumerate(model.children()):
        inputs = activations.detach().requires_grad_(trained_before)
        with FlopCounterMode(display=False) as counter:
            output = _train_pass(layer, inputs)  # (B, *output_shape)
        seconds = _median_train_seconds(layer, inputs, repeats)
        trained_before = trained_before or any(p.requires_grad for p in layer.parameters())
        layers.append(
            LayerProfile(
                name=f"{index}:{type(layer).__name__.lower()}",
                kind=layer_kind(layer),
                flops=counter.get_total_flops() / batch_size,
                param_bytes=float(sum(p.numel() * p.element_size() for p in layer.parameters())),
                activation_bytes=float(output[0].numel() * output.element_size()),
                ref_time_s=seconds / batch_size,
            )
        )
        activations = output.detach()
    return layers


def _layer_rows(path: Path) -> list[dict[str, object]]:
    if path.suffix.lower() == ".csv":
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                return [{k: v for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]
        except FileNotFoundError:
            raise ConfigError(f"profile table {path} not found") from None
        except IsADirectoryError:
            raise ConfigError(f"profile table {path} is a folder; give a CSV or YAML file") from None
        except UnicodeDecodeError:
            raise ConfigError(f"profile table {path} is not a text file (not UTF-8); give a CSV file") from None
    raw = read_yaml(path, what="profile table")
    rows = raw.get("layers")
    if not isinstance(rows, list):
        raise ConfigError(f"profile table {path} needs a 'layers:' list of rows")
    return rows


def load_profile_table(path: str | Path) -> ModelProfile:
    """Read a profile table (CSV with a header row, or YAML with ``name`` and ``layers``).

    Columns are the fields of :class:`LayerProfile`: ``name, kind, flops, param_bytes,
    activation_bytes`` and optionally ``sync_bytes, ref_time_s``. A row with ``flops`` and
    ``activation_bytes`` both 0 is refused (a layer that neither computes nor outputs).
    """
    path = Path(path)
    rows = _layer_rows(path)
    layers = []
    for number, row in enumerate(rows, start=1):
        try:
            layer = LayerProfile.model_validate(row)
        except ValidationError as exc:
            raise ConfigError(f"profile table {path}, layer {number}: {format_validation_error(exc)}") from None
        if layer.flops == 0 and layer.activation_bytes == 0:
            raise ConfigError(
                f"profile table {path}, layer {number} ({layer.name!r}): flops and activation_bytes are "
                "both 0, a layer that neither computes nor outputs anything; give its costs or drop the row")
        layers.append(layer)
    name = path.stem
    if path.suffix.lower() != ".csv":
        name = str(read_yaml(path, what="profile table").get("name", name))
    return ModelProfile(name=name, layers=tuple(layers))


PROFILE_SUFFIXES = (".csv", ".yaml", ".yml")
_COLUMNS = tuple(LayerProfile.model_fields)


def save_profile_table(profile: ModelProfile, path: str | Path) -> Path:
    """Write ``profile`` as a table that :func:`load_profile_table` reads back exactly.

    Parameters
    ----------
    profile : ModelProfile
        The profile to keep (e.g. one measured by :func:`profile_torch_model`).
    path : str or Path
        A ``.csv`` file (named by its stem when read back) or a ``.yaml``/``.yml`` file
        (which keeps ``profile.name``). Floats are written in their shortest exact form,
        so a plan re-derived from the file is the same plan.

    Raises
    ------
    ConfigError
        When the suffix is none of :data:`PROFILE_SUFFIXES`.
    """
    path = Path(path)
    if path.suffix.lower() not in PROFILE_SUFFIXES:
        raise ConfigError(f"profile table {path}: give a file ending in {', '.join(PROFILE_SUFFIXES)}")
    rows = [layer.model_dump() for layer in profile.layers]
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=_COLUMNS)
            writer.writeheader()
            writer.writerows({key: "" if value is None else repr(value) if isinstance(value, float) else value
                              for key, value in row.items()} for row in rows)
    else:
        layers = [{key: value for key, value in row.items() if value is not None} for row in rows]
        path.write_text(yaml.safe_dump({"name": profile.name, "layers": layers}, sort_keys=False), encoding="utf-8")
    return path
