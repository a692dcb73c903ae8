"""Report pages for FL runs: accuracy against round and against virtual time, one or many runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fedfleet.errors import FedfleetError
from fedfleet.fl.history import read_jsonl
from fedfleet.fl.multijob.outputs import is_multijob_run
from fedfleet.fl.run_dir import METRICS_FILE, SUMMARY_FILE
from fedfleet.report.figures import new_figure, save_figure
from fedfleet.report.html import HtmlReport
from fedfleet.report.pruning import is_pruned_run, plot_layer_rates, plot_model_size

SUMMARY_COLUMNS = ("run", "strategy", "final_accuracy", "best_accuracy", "virtual_time_s",
                   "wall_time_s", "time_to_target_s", "updates_accepted", "updates_rejected")
PRUNING_COLUMNS = ("flops_reduction", "params_reduction", "model_params", "model_flops")
RECORD_KEYS = ("virtual_time_s", "test_accuracy")  # besides round (sync) or version (async)


def load_run(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A run's metrics records and summary; a one-line error when the folder is not a run."""
    metrics, summary = run_dir / METRICS_FILE, run_dir / SUMMARY_FILE
    if not metrics.exists():
        raise FedfleetError(f"{run_dir} is not a run directory (no {METRICS_FILE})")
    records = _parsed(metrics, read_jsonl)
    if not records:
        raise FedfleetError(f"{metrics} holds no records (the run stopped before its first evaluation); "
                            "resume it with fedfleet run --resume, or leave it out")
    for number, record in enumerate(records, start=1):
        _check_record(metrics, number, record)
    if not summary.exists():
        return records, {}
    summary_data = _parsed(summary, lambda path: json.loads(path.read_text(encoding="utf-8")))
    if not isinstance(summary_data, dict):
        raise FedfleetError(f"{summary} is damaged (a JSON {type(summary_data).__name__}, not an object); "
                            "rerun the run or resume it")
    return records, summary_data


def _check_record(path: Path, number: int, record: Any) -> None:
    """One metrics line: an object with the keys the report plots."""
    if not isinstance(record, dict):
        problem = f"a JSON {type(record).__name__}, not an object"
    elif "round" not in record and "version" not in record:
        problem = "neither 'round' nor 'version'"
    else:
        missing = [key for key in RECORD_KEYS if key not in record]
        not_numbers = [key for key in (*RECORD_KEYS, "round", "version") if key in record
                       and (isinstance(record[key], bool) or not isinstance(record[key], int | float | None))]
        problem = (f"no {missing[0]!r}" if missing
                   else f"{not_numbers[0]!r} is {record[not_numbers[0]]!r}, not a number" if not_numbers else "")
    if problem:
        raise FedfleetError(f"{path} line {number} is not a metrics record ({problem}); "
                            "give a run directory written by fedfleet run")


def _parsed(path: Path, parse: Callable[[Path], Any]) -> Any:
    try:
        return parse(path)
    except json.JSONDecodeError as exc:
        raise FedfleetError(f"{path} is damaged (line {exc.lineno}: {exc.msg}); rerun the run or resume it") from None
    except UnicodeDecodeError:
        raise FedfleetError(f"{path} is not a text file (not UTF-8 JSON); rerun the run or resume it") from None


def _x_key(records: Sequence[dict[str, Any]]) -> str:
    return "round" if records and "round" in records[0] else "version"


def plot_accuracy(runs: dict[str, list[dict[str, Any]]], x: str, path: Path) -> Path:
    """Test accuracy of each run against ``x`` ("step" = round (sync) or version (async), or "virtual_time_s")."""
    figure, axes = new_figure()
    for label, records in runs.items():
        key = _x_key(records) if x == "step" else x
        axes.plot([r[key] for r in records], [r["test_accuracy"] for r in records], label=label)
    steps = sorted({_x_key(records) for records in runs.values()})
    axes.set_xlabel(" / ".join(steps) if x == "step" else "virtual time (s)")
    axes.set_ylabel("test accuracy")
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, path)


def plot_staleness(counts: dict[str, dict[str, int]], path: Path) -> Path:
    """Histogram of update staleness (versions between dispatch and arrival), one bar series per run."""
    figure, axes = new_figure()
    width = 0.8 / max(len(counts), 1)
    for index, (label, histogram) in enumerate(counts.items()):
        values = sorted(int(k) for k in histogram)
        axes.bar([v + index * width for v in values], [histogram[str(v)] for v in values], width, label=label)
    axes.set_xlabel("staleness t - o (versions)")
    axes.set_ylabel("updates")
    axes.legend()
    return save_figure(figure, path)


def plot_participation(participation: dict[str, list[int]], path: Path, ylabel: str = "accepted updates") -> Path:
    """Accepted updates (or what ``ylabel`` says is counted) per device, devices sorted by id, one line per run."""
    figure, axes = new_figure()
    for label, counts in participation.items():
        axes.step(range(len(counts)), counts, where="mid", label=label)
    axes.set_xlabel("device id")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, path)


def write_runs_report(run_dirs: Sequence[Path], out: Path) -> Path:
    """One page comparing ``run_dirs``: a summary table and overlaid accuracy curves.

    Multi-job run directories (``fedfleet multijob``) get their own page (report/multijob.py).
    """
    multijob = [is_multijob_run(run_dir) for run_dir in run_dirs]
    if any(multijob):
        if not all(multijob):
            raise FedfleetError("a report compares either multi-job runs or single runs; give only one kind")
        from fedfleet.report.multijob import write_multijob_report  # it reads this module's load_run

        return write_multijob_report(run_dirs, out)
    runs: dict[str, list[dict[str, Any]]] = {}
    rows = []
    for run_dir in run_dirs:
        records, summary = load_run(run_dir)
        label = run_dir.name if run_dir.name not in runs else str(run_dir)
        runs[label] = records
        rows.append({"run": label, **summary})
    folder = out.parent
    stem = out.stem
    plot_accuracy(runs, "step", folder / f"{stem}_accuracy_round.png")
    plot_accuracy(runs, "virtual_time_s", folder / f"{stem}_accuracy_time.png")
    title = "fedfleet run: " + next(iter(runs)) if len(runs) == 1 else f"fedfleet: {len(runs)} runs compared"
    page = HtmlReport(title)
    page.heading("Summary").table(rows, SUMMARY_COLUMNS)
    page.heading("Accuracy")
    page.image(f"{stem}_accuracy_round.png", "test accuracy against round")
    page.image(f"{stem}_accuracy_time.png", "test accuracy against virtual time")
    pruned = {label: records for label, records in runs.items() if is_pruned_run(records)}
    if pruned:
        plot_layer_rates(pruned, folder / f"{stem}_pruning_rates.png")
        plot_model_size(pruned, folder / f"{stem}_model_size.png")
        page.heading("Pruning")
        page.table([{"run": row["run"], **{k: row.get(k) for k in PRUNING_COLUMNS}} for row in rows
                    if row["run"] in pruned])
        page.image(f"{stem}_pruning_rates.png", "each conv layer's pruning rate against round")
        page.image(f"{stem}_model_size.png", "non-zero parameters and FLOPs against round")
    staleness = {row["run"]: row["staleness_counts"] for row in rows if row.get("staleness_counts")}
    if staleness:
        plot_staleness(staleness, folder / f"{stem}_staleness.png")
        page.heading("Staleness").image(f"{stem}_staleness.png", "staleness of the updates that arrived")
    participation = {row["run"]: row["participation"] for row in rows if row.get("participation")}
    if participation:
        plot_participation(participation, folder / f"{stem}_participation.png")
        page.heading("Participation").image(f"{stem}_participation.png", "accepted updates per device")
    return page.write(out)
