"""``fedfleet place``: choose a stage plan of a network's layers over device types."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fedfleet.cli.common import OutputFormat, print_json
from fedfleet.errors import ConfigError
from fedfleet.paths import writable_file
from fedfleet.placement import (
    PLANNERS,
    DeviceCatalog,
    ModelProfile,
    PlacementProblem,
    Plan,
    load_catalog,
    load_profile_table,
    profile_torch_model,
    save_profile_table,
)
from fedfleet.placement.budget import fastest_within_budget
from fedfleet.placement.profile import PROFILE_SUFFIXES

# Input shape and classes the built-in models are profiled with (Fashion-MNIST).
MODEL_INPUT = (1, 28, 28)
MODEL_CLASSES = 10
SEEDED_PLANNERS = ("genetic", "rl")


def load_profile(model: str | None, profile: Path | None, batch_size: int) -> ModelProfile:
    """A profile from exactly one of a built-in model name (profiled at ``batch_size``) and a table."""
    if (model is None) == (profile is None):
        raise ConfigError("give exactly one of --model NAME and --profile FILE")
    if profile is not None:
        return load_profile_table(profile)
    from fedfleet.models import build_model

    assert model is not None
    return profile_torch_model(build_model(model, MODEL_INPUT, MODEL_CLASSES), MODEL_INPUT, name=model,
                               batch_size=batch_size)


def _check_profile_path(path: Path) -> None:
    """Refuse a ``--save-profile`` path that cannot be written or read back, before any work."""
    if path.suffix.lower() not in PROFILE_SUFFIXES:
        raise ConfigError(f"--save-profile {path}: give a file ending in {', '.join(PROFILE_SUFFIXES)}")
    writable_file(path, "--save-profile")


def _save_profile(profile: ModelProfile, path: Path) -> None:
    try:
        save_profile_table(profile, path)
    except OSError as exc:
        raise ConfigError(f"cannot write the profile {path}: {exc.strerror or exc}") from None


def plan_summary(plan: Plan, problem: PlacementProblem) -> dict[str, Any]:
    """The plan as plain data (the ``--format json`` payload, less timing and names)."""
    layers = problem.profile.layers
    return {
        "model": problem.profile.name,
        "throughput": plan.throughput,
        "throughput_target": problem.job.throughput_target,
        "cost": plan.cost,
        "training_hours": plan.training_hours,
        "rental_per_hour": plan.rental_per_hour,
        "bottleneck": plan.bottleneck,
        "stages": [
            {
                "stage": index,
                "first_layer": layers[stage.first].name,
                "last_layer": layers[stage.last].name,
                "layers": stage.last - stage.first + 1,
                "device": stage.device,
                "instances": stage.instances,
                "stage_time_s": stage.time_s,
                "transfer_s": stage.transfer_s,
                "memory_gib": stage.memory_gib,
            }
            for index, stage in enumerate(plan.stages)
        ],
    }


def _print_table(summary: dict[str, Any]) -> None:
    table = Table(title=f"{summary['model']} on {summary['planner']} plan")
    for column in ("stage", "layers", "device", "instances", "stage time (ms)", "transfer (ms)", "GiB/inst"):
        table.add_column(column, justify="left" if column in ("layers", "device") else "right")
    for stage in summary["stages"]:
        span = stage["first_layer"] if stage["layers"] == 1 else f"{stage['first_layer']} … {stage['last_layer']}"
        table.add_row(str(stage["stage"]), span, stage["device"], str(stage["instances"]),
                      f"{1e3 * stage['stage_time_s']:.3g}", f"{1e3 * stage['transfer_s']:.3g}",
                      f"{stage['memory_gib']:.3g}")
    out = Console(width=120)
    out.print(table)
    out.print(f"throughput {summary['throughput']:.4g} samples/s (target {summary['throughput_target']:.4g}, "
              f"bottleneck: {summary['bottleneck']})")
    out.print(f"cost {summary['cost']:.4g} = {summary['training_hours']:.4g} h x "
              f"{summary['rental_per_hour']:.4g} per hour; planned in {summary['planning_time_s']:.3g} s")


def place(
    devices: Annotated[Path, typer.Option("--devices", help="Device catalog YAML (types, links, job).")],
    model: Annotated[str | None, typer.Option("--model", help="Built-in model to profile: mlp|cnn|lenet5.")] = None,
    profile: Annotated[Path | None, typer.Option(
        "--profile", help="Profile table (CSV or YAML), e.g. written by --save-profile.")] = None,
    save_profile: Annotated[Path | None, typer.Option(
        "--save-profile", help="Write the profile used (CSV or YAML) for a later --profile.")] = None,
    planner: Annotated[str, typer.Option("--planner", help="genetic|dp|brute|greedy|rl|cpu-only|gpu-only")] = "genetic",
    target: Annotated[float | None, typer.Option("--target", help="Override job.throughput_target.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Override job.batch_size.")] = None,
    budget: Annotated[float | None, typer.Option(
        "--budget-per-hour", help="Fastest plan renting at most this per hour (objective max_throughput).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of randomised planners.")] = 0,
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML page with the pipeline.")] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="text or json.")] = OutputFormat.text,
) -> None:
    """Place a network's layers on device types: stages, instances, throughput and cost."""
    if report is not None:
        writable_file(report, "--report")  # before planning: a folder, /proc or a read-only place fails at once
    if save_profile is not None:
        _check_profile_path(save_profile)
    catalog: DeviceCatalog = load_catalog(devices).with_job(
        throughput_target=target, batch_size=batch_size, budget_per_hour=budget,
        objective="max_throughput" if budget is not None else None)
    layers = load_profile(model, profile, catalog.job.batch_size)
    if save_profile is not None:
        _save_profile(layers, save_profile)
    problem = PlacementProblem(layers, catalog)
    params = {"random_state": seed} if planner in SEEDED_PLANNERS else {}
    started = time.perf_counter()
    if catalog.job.objective == "max_throughput":
        assert catalog.job.budget_per_hour is not None  # JobSpec guarantees it
        plan, problem = fastest_within_budget(problem, lambda: PLANNERS.build(planner, **params),
                                              catalog.job.budget_per_hour)
    else:
        plan = PLANNERS.build(planner, **params).fit(problem).plan_
    summary = {"planner": planner, **plan_summary(plan, problem), "objective": catalog.job.objective,
               "throughput_target": catalog.job.throughput_target,
               "budget_per_hour": catalog.job.budget_per_hour, "planning_time_s": time.perf_counter() - started}
    if report is not None:
        from fedfleet.report.placement import write_plan_report

        try:
            write_plan_report(plan, problem, report, title=f"{problem.profile.name}: {planner} plan")
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise ConfigError(f"cannot write the report {report}: {exc.strerror or exc}{where}") from None
        summary["report"] = str(report)
    if save_profile is not None:
        summary["saved_profile"] = str(save_profile)
    if output is OutputFormat.json:
        print_json(summary)
    else:
        _print_table(summary)


def register(app: typer.Typer) -> None:
    """Add ``fedfleet place`` to the CLI."""
    app.command("place")(place)
