"""The Python API under the CLI: load a config, run it, get a result.

>>> from fedfleet import api
>>> result = api.run("configs/digits.yaml", overrides=["train.rounds=3"], out_dir="runs/demo")
>>> result.summary["final_accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedfleet.config import RunConfig, load_config
from fedfleet.errors import ConfigError
from fedfleet.fl.run_dir import REPORT_FILE
from fedfleet.fl.simulation import RunResult, resume_simulation, run_simulation
from fedfleet.report.runs import write_runs_report

__all__ = ["REPORT_FILE", "default_out_dir", "resume", "run"]


def default_out_dir(name: str) -> Path:
    """runs/<name>-<UTC timestamp>."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{name}-{stamp}"


def run(
    config: str | Path | dict[str, Any] | RunConfig | None = None,
    overrides: str | Sequence[str] | dict[str, Any] | None = None,
    out_dir: str | Path | None = None,
    report: bool = True,
    overwrite: bool = False,
    **parts: Any,
) -> RunResult:
    """Run a federated job and write its run directory.

    Parameters
    ----------
    config : path, dict, RunConfig or None
        None uses configs/default.yaml.
    overrides : "key=value", list of them, or nested dict, optional
    out_dir : path, optional
        Defaults to runs/<name>-<timestamp>. It must be new or empty, so that no earlier run's
        checkpoint can be mixed into this one (a ConfigError says so otherwise).
    report : bool
        Write report.html with plots into the run directory.
    overwrite : bool
        Let ``out_dir`` hold an earlier run, whose files are deleted first (like ``--overwrite``).
    **parts :
        Passed to :func:`fedfleet.fl.run_simulation` (data, model, strategy, selector,
        callbacks, client_hooks).
    """
    if isinstance(config, RunConfig):
        if overrides:
            raise ConfigError("pass overrides with a config file or dict, not with a RunConfig")
        resolved = config
    else:
        if isinstance(overrides, str):
            overrides = [overrides]
        resolved = load_config(config, list(overrides) if isinstance(overrides, Sequence) else overrides)
    out = Path(out_dir) if out_dir is not None else default_out_dir(resolved.name)
    result = run_simulation(resolved, out_dir=out, overwrite=overwrite, **parts)
    if report:
        write_runs_report([out], out / REPORT_FILE)
    return result


def resume(run_dir: str | Path, report: bool = True, **parts: Any) -> RunResult:
    """Continue ``run_dir`` from its last checkpoint."""
    result = resume_simulation(run_dir, **parts)
    if report:
        write_runs_report([Path(run_dir)], Path(run_dir) / REPORT_FILE)
    return result
