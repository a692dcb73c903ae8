"""Assemble a runner from a config and run it: the engine's one-call entry point."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fedfleet.backends.build import build_backend
from fedfleet.config import RunConfig, load_config
from fedfleet.errors import CheckpointError, ConfigError
from fedfleet.fl.async_runner import AsyncRunner
from fedfleet.fl.backend import ClientHook
from fedfleet.fl.callbacks import Callback
from fedfleet.fl.checkpoint import check_fingerprint, load_checkpoint
from fedfleet.fl.faults import build_availability
from fedfleet.fl.federated_data import FederatedData, build_federated_data
from fedfleet.fl.fleet import TimeModel, make_fleet
from fedfleet.fl.run_dir import CONFIG_FILE, RunDirectory, prepare_new_run_dir
from fedfleet.fl.selection import RandomSelector, Selector
from fedfleet.fl.server_hooks import ServerHook
from fedfleet.fl.strategies import Strategy, build_strategy, with_aggregator
from fedfleet.fl.sync_runner import RunnerParts, SyncRunner
from fedfleet.models import build_model
from fedfleet.paths import writable_dir
from fedfleet.threads import torch_threads


@dataclass
class RunResult:
    """What a run produced.

    Attributes
    ----------
    config : RunConfig
        The fully resolved configuration.
    history : list of dict
        One metrics record per evaluation (the lines of metrics.jsonl).
    summary : dict
        The contents of summary.json.
    model : nn.Module
        The final global model.
    out_dir : Path or None
        The run directory, when one was written.
    """

    config: RunConfig
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    model: nn.Module
    out_dir: Path | None


def build_runner(
    config: RunConfig,
    data: FederatedData | None = None,
    model: nn.Module | None = None,
    out_dir: str | Path | None = None,
    strategy: Strategy | None = None,
    selector: Selector | None = None,
    callbacks: Sequence[Callback] = (),
    client_hooks: Sequence[ClientHook] = (),
    server_hooks: Sequence[ServerHook] = (),
) -> SyncRunner | AsyncRunner:
    """Assemble the runner of ``config.train.mode``; any part left as None is built from ``config``.

    With ``pruning.enabled`` the server holds out ``pruning.validation_fraction`` of the test set
    (unless ``data`` already has a validation part) and a pruning hook runs after ``server_hooks``.
    """
    data = data or build_federated_data(config.data, config.seed)
    if model is None:
        torch.manual_seed(config.seed)
        model = build_model(config.model.name, data.input_shape, data.num_classes)
    if config.pruning.enabled:
        data, server_hooks = _with_pruning(config, data, model, server_hooks)
    parts = RunnerParts(
        model=model,
        data=data,
        strategy=with_aggregator(strategy or build_strategy(config.strategy), config.aggregator),
        selector=selector or RandomSelector(),
        backend=build_backend(config.backend, model, data.clients),
        fleet=make_fleet(config.fleet, len(data.clients), config.seed),
        time_model=TimeModel(config.fleet.fluctuation),
        callbacks=callbacks,
        client_hooks=client_hooks,
        server_hooks=server_hooks,
    )
    run_dir = RunDirectory(out_dir) if out_dir is not None else None
    if run_dir:
        run_dir.write_config(config)
    availability = build_availability(config.fleet.dropout, config.fleet.trace, len(data.clients), config.seed)
    if config.train.mode == "async":
        return AsyncRunner(config, parts, run_dir, availability)
    return SyncRunner(config, parts, run_dir, availability)


def _with_pruning(config: RunConfig, data: FederatedData, model: nn.Module, hooks: Sequence[ServerHook],
                  ) -> tuple[FederatedData, list[ServerHook]]:
    """The data with the server's validation part, and the hooks with the pruning hook appended."""
    from fedfleet.pruning.controller import PruningHook  # pruning builds on the engine; imported when used

    if not isinstance(model, nn.Sequential):
        raise ConfigError(f"pruning.enabled needs an nn.Sequential model; {config.model.name!r} is a "
                          f"{type(model).__name__}")
    if data.validation is None:
        data = data.with_validation(config.pruning.validation_fraction, config.seed)
    assert data.validation is not None
    hook = PruningHook(config.pruning, model, data.validation, config.seed, config.train.rounds,
                       config.train.eval_batch_size)
    return data, [*hooks, hook]


def run_simulation(
    config: RunConfig,
    data: FederatedData | None = None,
    model: nn.Module | None = None,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    **parts: Any,
) -> RunResult:
    """Run a federated simulation end to end.

    Parameters
    ----------
    config : RunConfig
        See :func:`fedfleet.config.load_config`.
    data : FederatedData, optional
        Client data sets and a test set; built from ``config.data`` when omitted.
    model : nn.Module, optional
        The global model; built from ``config.model`` (seeded by ``config.seed``) when omitted.
    out_dir : path, optional
        Run directory for metrics, checkpoints, model and summary; it must be new or empty.
    overwrite : bool
        Let ``out_dir`` hold an earlier run, whose files are deleted first.
    **parts :
        ``strategy``, ``selector``, ``callbacks``, ``client_hooks``, ``server_hooks`` (see :func:`build_runner`).
    """
    if out_dir is not None:
        prepare_new_run_dir(out_dir, overwrite)
    with torch_threads(config.backend.threads):
        runner = build_runner(config, data, model, out_dir, **parts)
        summary = runner.run()
    written = runner.run_dir.path if runner.run_dir else None
    return RunResult(config, runner.state.records, summary, runner.parts.model, written)


def read_run_config(run_dir: str | Path) -> RunConfig:
    """The resolved config of an existing run directory."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise CheckpointError(f"{run_dir} is not a run directory (no {CONFIG_FILE}); pass one written by fedfleet run")
    return load_config(path)


def resume_simulation(run_dir: str | Path, data: FederatedData | None = None, **parts: Any) -> RunResult:
    """Continue the run in ``run_dir`` from its last checkpoint, to the result an uninterrupted run gives."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    writable_dir(run_dir, "--resume")
    state = load_checkpoint(RunDirectory(run_dir).checkpoint_dir)
    with torch_threads(config.backend.threads):
        runner = build_runner(config, data, out_dir=run_dir, **parts)
        check_fingerprint(state, runner.state.fingerprint, run_dir)
        try:
            runner.resume_from(state)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CheckpointError(f"the checkpoint in {run_dir} holds a strategy state this run cannot load "
                                  f"({type(exc).__name__}: {exc}); it is damaged: start the run again") from None
        summary = runner.run()
    return RunResult(config, runner.state.records, summary, runner.parts.model, run_dir)
