"""Pictures of placement plans: the pipeline of stages, and planners compared."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from fedfleet.placement.cost import PlacementProblem, Plan
from fedfleet.report.figures import new_figure, save_figure
from fedfleet.report.html import HtmlReport


def pipeline_figure(plan: Plan, problem: PlacementProblem, path: str | Path) -> Path:
    """Stages as boxes along the layer axis: colour = device type, height = per-batch time."""
    figure, axes = new_figure(8.0, 3.2)
    names = problem.catalog.names
    colours = {name: f"C{index}" for index, name in enumerate(names)}
    for index, stage in enumerate(plan.stages):
        width = stage.last - stage.first + 1
        axes.bar(stage.first, 1e3 * stage.time_s, width=width, align="edge",
                 color=colours[stage.device], edgecolor="black", label=stage.device)
        axes.text(stage.first + width / 2, 0.5e3 * stage.time_s, f"S{index}\n{stage.device}\nx{stage.instances}",
                  ha="center", va="center", fontsize=8)
        if stage.transfer_s > 0:
            axes.plot([stage.last + 1] * 2, [0, 1e3 * stage.transfer_s], color="black", linewidth=3)
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axes.legend(unique.values(), unique.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    allowed = 1e3 * problem.job.batch_size / problem.job.throughput_target
    axes.axhline(allowed, color="grey", linestyle="--", linewidth=1)
    axes.set_ylim(0, 1.15 * max(allowed, *(1e3 * s.time_s for s in plan.stages)))
    axes.set_xlim(0, problem.num_layers)
    axes.set_xlabel("layer (black bars: boundary transfer time)")
    axes.set_ylabel("time per batch (ms)")
    axes.set_title(f"{problem.profile.name}: {plan.throughput:.4g} samples/s, cost {plan.cost:.4g} "
                   f"(dashed: time allowed by the target)", fontsize=9)
    return save_figure(figure, path)


def planner_comparison_figure(costs: Mapping[str, float], path: str | Path, title: str = "") -> Path:
    """Bar chart of plan cost per planner (missing bars: no feasible plan)."""
    figure, axes = new_figure(6.0, 3.2)
    labels = list(costs)
    axes.bar(labels, [costs[label] for label in labels], color=[f"C{i}" for i in range(len(labels))])
    axes.set_ylabel("cost")
    axes.set_title(title, fontsize=9)
    return save_figure(figure, path)


def write_plan_report(plan: Plan, problem: PlacementProblem, path: str | Path, title: str,
                      rows: Sequence[Mapping[str, object]] = ()) -> Path:
    """An HTML page with the plan's stage table and pipeline picture (PNG beside it)."""
    path = Path(path)
    picture = pipeline_figure(plan, problem, path.with_suffix(".pipeline.png"))
    layers = problem.profile.layers
    report = HtmlReport(title)
    report.paragraph(f"throughput {plan.throughput:.4g} samples/s (target "
                     f"{problem.job.throughput_target:.4g}), bottleneck {plan.bottleneck}; cost "
                     f"{plan.cost:.4g} = {plan.training_hours:.4g} h x {plan.rental_per_hour:.4g} per hour")
    report.table([{"stage": index, "layers": f"{layers[s.first].name} … {layers[s.last].name}",
                   "device": s.device, "instances": s.instances, "stage time (ms)": 1e3 * s.time_s,
                   "transfer (ms)": 1e3 * s.transfer_s, "GiB per instance": s.memory_gib}
                  for index, s in enumerate(plan.stages)])
    report.image(picture.name, "pipeline stages")
    if rows:
        report.table(rows)
    return report.write(path)
