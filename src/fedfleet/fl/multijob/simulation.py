"""Assemble a multi-job run from its config, run it, resume it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedfleet.backends.build import build_backend
from fedfleet.errors import CheckpointError
from fedfleet.fl.callbacks import Callback
from fedfleet.fl.checkpoint import check_fingerprint, load_checkpoint
from fedfleet.fl.faults import build_availability
from fedfleet.fl.federated_data import FederatedData, build_federated_data
from fedfleet.fl.fleet import DeviceProfile, TimeModel, make_fleet
from fedfleet.fl.multijob.config import MultiJobConfig, job_run_config, load_multijob_config
from fedfleet.fl.multijob.outputs import MultiJobDirectory
from fedfleet.fl.multijob.runner import Job, MultiJobRunner
from fedfleet.fl.params import get_flat
from fedfleet.fl.run_dir import CONFIG_FILE, prepare_new_run_dir
from fedfleet.fl.scheduling import SchedulingPolicy, build_policy
from fedfleet.fl.selection import RandomSelector
from fedfleet.fl.strategies import FederationInfo, build_strategy, with_aggregator
from fedfleet.fl.sync_runner import RunnerParts, initial_state, plan_from_config
from fedfleet.models import build_model
from fedfleet.paths import writable_dir
from fedfleet.seeding import EngineStream, derive_seed
from fedfleet.threads import torch_threads


class _MeanDraw:
    """Stands in for a generator in the time model: the shifted exponential's draw at its mean, 1."""

    def exponential(self, scale: float = 1.0) -> float:
        return scale


def expected_times(time_model: TimeModel, fleet: Sequence[DeviceProfile], sizes: np.ndarray, epochs: int,
                   num_params: int) -> np.ndarray:
    """(num_devices,) each device's expected seconds for one update of a job (what a scheduler plans with)."""
    mean: Any = _MeanDraw()
    return np.array([time_model.update_time(d, int(n), epochs, num_params, mean)
                     for d, n in zip(fleet, sizes, strict=True)])


def build_job(config: MultiJobConfig, index: int, fleet: list[DeviceProfile], time_model: TimeModel,
              out: MultiJobDirectory | None, data: FederatedData | None = None) -> Job:
    """Job ``index`` with its own data partition, model, strategy and backend on the shared fleet."""
    run_config = job_run_config(config, index)
    data = data or build_federated_data(run_config.data, run_config.seed)
    torch.manual_seed(run_config.seed)
    model = build_model(run_config.model.name, data.input_shape, data.num_classes)
    strategy = with_aggregator(build_strategy(run_config.strategy), run_config.aggregator)
    strategy.setup(FederationInfo(data.num_samples(), data.label_histograms()))
    parts = RunnerParts(model=model, data=data, strategy=strategy,
                        selector=RandomSelector(),  # not consulted: the scheduling policy picks the devices
                        backend=build_backend(run_config.backend, model, data.clients), fleet=fleet,
                        time_model=time_model)
    params = get_flat(model)
    plan = plan_from_config(run_config)
    run_dir = out.job_dir(config.jobs[index].name) if out is not None else None
    if run_dir is not None:
        run_dir.write_config(run_config)
    return Job(index, config.jobs[index].name, run_config, parts, initial_state(run_config, params, ("dropped",), {}),
               plan, expected_times(time_model, fleet, data.num_samples(), plan.epochs, params.numel()), run_dir)


def build_multijob_runner(config: MultiJobConfig, out_dir: str | Path | None = None,
                          datasets: Sequence[FederatedData | None] | None = None,
                          policy: SchedulingPolicy | None = None, callbacks: Sequence[Callback] = ()) -> MultiJobRunner:
    """Every job, the shared fleet, the policy of ``config.scheduler``; any part given replaces its default."""
    out = MultiJobDirectory(out_dir) if out_dir is not None else None
    if out is not None:
        out.write_config(config)
    fleet = make_fleet(config.fleet, config.num_devices, config.seed)
    time_model = TimeModel(config.fleet.fluctuation)
    given = list(datasets) if datasets is not None else [None] * len(config.jobs)
    jobs = [build_job(config, i, fleet, time_model, out, given[i]) for i in range(len(config.jobs))]
    policy = policy or build_policy(config.scheduler, len(jobs), derive_seed(config.seed, EngineStream.SCHEDULER))
    availability = build_availability(config.fleet.dropout, config.fleet.trace, config.num_devices, config.seed)
    return MultiJobRunner(config, jobs, fleet, time_model, policy, out, availability, callbacks)


@dataclass
class MultiJobResult:
    """What a multi-job run produced: its config, combined summary, the runner (jobs, events) and directory."""

    config: MultiJobConfig
    summary: dict[str, Any]
    runner: MultiJobRunner
    out_dir: Path | None


def run_multijob(config: MultiJobConfig, out_dir: str | Path | None = None, **parts: Any) -> MultiJobResult:
    """Run every job of ``config`` over its shared fleet (``out_dir`` must be new or empty).

    ``parts``: ``datasets``, ``policy``, ``callbacks`` (see :func:`build_multijob_runner`).
    """
    if out_dir is not None:
        prepare_new_run_dir(out_dir)
    with torch_threads(config.backend.threads):
        runner = build_multijob_runner(config, out_dir, **parts)
        summary = runner.run()
    return MultiJobResult(config, summary, runner, Path(out_dir) if out_dir is not None else None)


def resume_multijob(run_dir: str | Path, **parts: Any) -> MultiJobResult:
    """Continue the multi-job run in ``run_dir`` from its last checkpoint, to the uninterrupted run's result."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise CheckpointError(f"{run_dir} is not a run directory (no {CONFIG_FILE}); pass one written by "
                              "fedfleet multijob")
    config = load_multijob_config(run_dir / CONFIG_FILE)
    writable_dir(run_dir, "--resume")
    state = load_checkpoint(run_dir / "checkpoint")
    with torch_threads(config.backend.threads):
        runner = build_multijob_runner(config, run_dir, **parts)
        check_fingerprint(state, runner.state.fingerprint, run_dir)
        try:
            runner.resume_from(state)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CheckpointError(f"the checkpoint in {run_dir} does not hold a multi-job run's state "
                                  f"({type(exc).__name__}: {exc}); it is damaged: start the run again") from None
        summary = runner.run()
    return MultiJobResult(config, summary, runner, run_dir)
