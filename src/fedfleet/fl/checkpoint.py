"""Resume state: model, strategy state, RNG states, clock, history, kept so loading runs no code.

A checkpoint folder holds ``state.json`` (the manifest: format, version, the name and SHA-256
of the tensor file, and the state encoded by :mod:`fedfleet.fl.state_codec`) and one
``tensors-<digest>.safetensors``. Saving writes the tensor file under a new name first and
then replaces ``state.json`` atomically, so a crash at any point leaves either the old or the
new checkpoint whole, never a mix. The pickle format of earlier versions (``state.pt``) is
refused, never unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from fedfleet.errors import CheckpointError
from fedfleet.fl.state_codec import StateDecodeError, decode, encode

MANIFEST_FILE = "state.json"
LEGACY_FILE = "state.pt"
FORMAT = "fedfleet-checkpoint"
VERSION = 1
TENSOR_FILE = re.compile(r"tensors-[0-9a-f]{16}\.safetensors")
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


@dataclass
class RunState:
    """Everything a synchronous or asynchronous run needs to continue exactly where it stopped."""

    step: int  # completed rounds (sync) or aggregations (async)
    params: torch.Tensor
    strategy_state: dict[str, Any]
    rng_state: dict[str, Any]  # numpy Generator.bit_generator.state
    clock: float
    wall_time_s: float
    records: list[dict[str, Any]]
    totals: dict[str, int]  # cumulative counters (updates, bytes)
    extra: dict[str, Any]  # runner-specific state (e.g. the async event queue)
    fingerprint: dict[str, Any] = field(default_factory=dict)  # the run that wrote it: see run_fingerprint


def run_fingerprint(config: BaseModel, params: torch.Tensor) -> dict[str, Any]:
    """What identifies the run a checkpoint belongs to: its resolved config and model size."""
    return {"config": config.model_dump(mode="json"), "num_params": int(params.numel())}


def check_fingerprint(state: RunState, expected: dict[str, Any], run_dir: Path) -> None:
    """Refuse to resume ``run_dir`` from a checkpoint another config (or model) wrote, or with damaged parameters."""
    if state.fingerprint == expected:
        num_params = expected.get("num_params")
        if "server_hooks" in state.extra:  # a hook may have changed the architecture: the runner checks the size
            num_params = state.params.numel() if state.params.dim() == 1 else num_params
        if state.params.dtype != torch.float32 or tuple(state.params.shape) != (num_params,):
            raise CheckpointError(f"the checkpoint in {run_dir} holds parameters of shape "
                                  f"{tuple(state.params.shape)} ({state.params.dtype}), not the model's "
                                  f"{num_params} float32 values; it is damaged: start the run again")
        rounds = expected.get("config", {}).get("train", {}).get("rounds")
        if isinstance(rounds, int) and state.step > rounds:
            raise CheckpointError(f"the checkpoint in {run_dir} is at step {state.step}, past the run's "
                                  f"train.rounds ({rounds}); it is damaged: start the run again")
        return
    ours, theirs = expected.get("config", {}), state.fingerprint.get("config", {})
    differing = sorted(_differing_keys(ours, theirs)) if isinstance(theirs, dict) else ["config"]
    if state.fingerprint.get("num_params") != expected.get("num_params"):
        differing.append(f"model size {state.fingerprint.get('num_params')} vs {expected.get('num_params')} "
                         "parameters")
    raise CheckpointError(f"the checkpoint in {run_dir} was written by another run than its config.yaml "
                          f"(differs in {', '.join(differing[:5]) or 'its fingerprint'}); the directory was "
                          "reused or edited: start the run again with --out pointing at an empty directory")


def save_checkpoint(folder: Path, state: RunState) -> Path:
    """Write ``state`` to ``folder`` atomically; return the manifest's path.

    Tensors (and NumPy arrays) go to a safetensors file, everything else to JSON; see
    :mod:`fedfleet.fl.state_codec` for the values ``strategy_state`` and ``extra`` may hold.
    """
    folder.mkdir(parents=True, exist_ok=True)
    structure, tensors = encode({f.name: getattr(state, f.name) for f in fields(state)})
    blob = save_tensors(tensors)
    digest = hashlib.sha256(blob).hexdigest()
    tensor_name = f"tensors-{digest[:16]}.safetensors"
    _write_atomic(folder / tensor_name, blob)
    manifest = {"format": FORMAT, "version": VERSION, "tensors": tensor_name, "tensors_sha256": digest,
                "state": structure}
    path = folder / MANIFEST_FILE
    _write_atomic(path, json.dumps(manifest, allow_nan=False).encode())
    for stale in folder.iterdir():
        if stale.name != tensor_name and (TENSOR_FILE.fullmatch(stale.name) or stale.suffix == ".partial"):
            stale.unlink(missing_ok=True)
    return path


def load_checkpoint(folder: Path) -> RunState:
    """Read the checkpoint in ``folder`` (a run's ``checkpoint/`` directory).

    Raises
    ------
    CheckpointError
        There is none, it is of the old pickle format, truncated, damaged or of the wrong structure.
    """
    path = folder / MANIFEST_FILE
    if not path.exists():
        if (folder / LEGACY_FILE).exists():
            raise CheckpointError(f"checkpoint {folder / LEGACY_FILE} is in the unsupported pickle format of "
                                  "earlier versions, which is never loaded because it can run code; "
                                  "start the run again")
        raise CheckpointError(f"no checkpoint at {path}; the run saved none (set checkpoint_every > 0)")
    manifest = _read_manifest(path)
    tensor_path = folder / manifest["tensors"]
    try:
        blob = tensor_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} names {tensor_path.name}, which cannot be read "
                              f"({exc.strerror or type(exc).__name__}); the checkpoint is incomplete") from None
    if hashlib.sha256(blob).hexdigest() != manifest["tensors_sha256"]:
        raise CheckpointError(f"checkpoint tensors {tensor_path} do not match their digest; "
                              "the file is truncated or damaged")
    try:
        tensors = load_tensors(blob)
        values = decode(manifest["state"], tensors)
    except (SafetensorError, StateDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} has the wrong structure ({exc})") from None
    return _run_state(values, path)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_bytes().decode(), parse_constant=_no_constant)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}); "
                              "it is truncated or not a fedfleet checkpoint") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a fedfleet checkpoint (no format {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {manifest.get('version')!r}; "
                              f"this fedfleet reads version {VERSION}")
    name, digest = manifest.get("tensors"), manifest.get("tensors_sha256")
    if not (isinstance(name, str) and TENSOR_FILE.fullmatch(name) and isinstance(digest, str)
            and "state" in manifest):
        raise CheckpointError(f"checkpoint {path} has the wrong structure (tensor file name or digest missing)")
    return manifest


def _run_state(values: Any, path: Path) -> RunState:
    """Check the decoded values have the types the runners rely on, so a bad file fails here, in one line."""
    expected: dict[str, type | tuple[type, ...]] = {
        "step": int, "params": torch.Tensor, "strategy_state": dict, "rng_state": dict, "clock": (int, float),
        "wall_time_s": (int, float), "records": list, "totals": dict, "extra": dict, "fingerprint": dict}
    problem = None
    if not isinstance(values, dict) or set(values) != set(expected):
        problem = f"fields {sorted(values) if isinstance(values, dict) else type(values).__name__}"
    else:
        wrong = [name for name, kind in expected.items()
                 if not isinstance(values[name], kind) or isinstance(values[name], bool)]
        if wrong:
            problem = f"{', '.join(wrong)} of the wrong type"
        elif values["step"] < 0:
            problem = f"a negative step {values['step']}"
        elif not all(isinstance(r, dict) for r in values["records"]):
            problem = "records that are not objects"
        elif (rng_problem := _rng_problem(values["rng_state"])) is not None:
            problem = rng_problem
    if problem is not None:
        raise CheckpointError(f"checkpoint {path} has the wrong structure ({problem})")
    return RunState(**values)


def _rng_problem(state: dict[str, Any]) -> str | None:
    name = state.get("bit_generator")
    if name not in BIT_GENERATORS:
        return f"unknown bit generator {name!r}"
    try:
        getattr(np.random, name)().state = state
    except (TypeError, ValueError, KeyError) as exc:
        return f"a {name} state that does not load: {exc}"
    return None


def _differing_keys(ours: dict[str, Any], theirs: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key in sorted(set(ours) | set(theirs)):
        a, b = ours.get(key), theirs.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _differing_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename is atomic all the same
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not strict JSON")
