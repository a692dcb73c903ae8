"""Report pages for multi-job runs: accuracy per job against virtual time, device occupancy, participation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fedfleet.errors import FedfleetError
from fedfleet.fl.multijob.outputs import JOBS_DIR, read_schedule
from fedfleet.fl.run_dir import SUMMARY_FILE
from fedfleet.report.figures import new_figure, save_figure
from fedfleet.report.html import HtmlReport
from fedfleet.report.runs import load_run, plot_participation

SUMMARY_COLUMNS = ("run", "scheduler", "time_to_all_targets_s", "mean_final_accuracy", "fairness_variance",
                   "jain_index", "device_busy_share", "planning_s_per_round", "virtual_time_s", "wall_time_s")
JOB_COLUMNS = ("run", "job", "final_accuracy", "best_accuracy", "time_to_target_s", "rounds", "fairness_variance",
               "jain_index", "stop_reason")


def load_multijob_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """(summary, metrics records per job, schedule) of a multi-job run directory; one-line errors."""
    path = run_dir / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise FedfleetError(f"{path} is missing or damaged; the multi-job run did not finish: resume it with "
                            "fedfleet multijob --resume") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("jobs"), dict):
        raise FedfleetError(f"{path} is not a multi-job summary (no 'jobs' object)")
    jobs = {name: load_run(run_dir / JOBS_DIR / name)[0] for name in summary["jobs"]}
    try:
        schedule = read_schedule(run_dir)
    except ValueError as exc:
        raise FedfleetError(f"{run_dir}/schedule.jsonl is damaged ({exc}); run it again") from None
    return summary, jobs, schedule


def plot_job_accuracy(runs: dict[str, dict[str, list[dict[str, Any]]]], job: str, path: Path) -> Path:
    """One job's test accuracy against virtual time, one line per run."""
    figure, axes = new_figure()
    for label, jobs in runs.items():
        records = jobs.get(job, [])
        axes.plot([r["virtual_time_s"] for r in records], [r["test_accuracy"] for r in records], label=label)
    axes.set_title(job)
    axes.set_xlabel("virtual time (s)")
    axes.set_ylabel("test accuracy")
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, path)


def plot_occupancy(schedule: list[dict[str, Any]], jobs: Sequence[str], path: Path) -> Path:
    """Which job held which device over virtual time (one row per device, one colour per job)."""
    figure, axes = new_figure(8.0, 5.0)
    colours = {job: f"C{i}" for i, job in enumerate(jobs)}
    for job in jobs:
        bars: dict[int, list[tuple[float, float]]] = {}
        for entry in (e for e in schedule if e["job"] == job):
            for device, end in zip(entry["devices"], entry["returns_s"], strict=True):
                bars.setdefault(device, []).append((entry["dispatched_s"], end - entry["dispatched_s"]))
        for device, spans in bars.items():
            axes.broken_barh(spans, (device - 0.4, 0.8), color=colours[job], label=job if device == min(bars) else None)
    axes.set_xlabel("virtual time (s)")
    axes.set_ylabel("device id")
    axes.legend(loc="upper right")
    return save_figure(figure, path)


def write_multijob_report(run_dirs: Sequence[Path], out: Path) -> Path:
    """One page comparing multi-job runs (e.g. one per policy): summary tables and the plots above."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    rows, job_rows, schedules, served = [], [], {}, {}
    for run_dir in run_dirs:
        summary, jobs, schedule = load_multijob_run(run_dir)
        label = run_dir.name if run_dir.name not in runs else str(run_dir)
        runs[label], schedules[label], served[label] = jobs, schedule, summary.get("participation", [])
        rows.append({"run": label, **summary})
        job_rows += [{"run": label, "job": name, **values} for name, values in summary["jobs"].items()]
    folder, stem = out.parent, out.stem
    title = f"fedfleet multi-job run: {next(iter(runs))}" if len(runs) == 1 else f"fedfleet: {len(runs)} multi-job runs"
    page = HtmlReport(title)
    page.heading("Summary").table(rows, SUMMARY_COLUMNS).table(job_rows, JOB_COLUMNS)
    page.heading("Accuracy against virtual time")
    job_names = list(dict.fromkeys(name for jobs in runs.values() for name in jobs))
    for index, job in enumerate(job_names):
        plot_job_accuracy(runs, job, folder / f"{stem}_job{index}_accuracy.png")
        page.image(f"{stem}_job{index}_accuracy.png", f"{job}: test accuracy against virtual time")
    page.heading("Device occupancy")
    for index, (label, schedule) in enumerate(schedules.items()):
        plot_occupancy(schedule, list(runs[label]), folder / f"{stem}_occupancy{index}.png")
        page.image(f"{stem}_occupancy{index}.png", f"{label}: which job held which device")
    plot_participation(served, folder / f"{stem}_participation.png", "rounds served (all jobs)")
    page.heading("Participation").image(f"{stem}_participation.png", "rounds each device served")
    return page.write(out)
