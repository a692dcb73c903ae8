"""``fedfleet vertical``: train a two-or-more-party vertical model and study its robustness."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from fedfleet.api import default_out_dir
from fedfleet.cli.common import OutputFormat, console, output, print_json
from fedfleet.errors import ConfigError
from fedfleet.fl.run_dir import RunDirectory
from fedfleet.paths import writable_dir, writable_file
from fedfleet.report.vertical import write_vertical_report
from fedfleet.vertical.config import VerticalConfig, load_vertical_config
from fedfleet.vertical.federation import launch, predict_active, run_active, run_passive
from fedfleet.vertical.study import StudyResult, run_study


def open_run_dir(path: Path) -> RunDirectory:
    """Create (or reuse) the run directory; a path that cannot be a writable folder is a ConfigError."""
    return RunDirectory(writable_dir(path, "--out"))


def write_run_dir(run_dir: RunDirectory, config: VerticalConfig, result: StudyResult) -> Path:
    """config.yaml, summary.json, metrics.jsonl, model.safetensors and report.html."""
    run_dir.write_config(config)
    summary: dict[str, Any] = {**result.summary, "robustness": {
        "attacks": result.attacks, "certified": result.certified, "corruption": result.corruption}}
    run_dir.write_summary(summary)
    run_dir.write_metrics(result.history)
    if result.model is not None:
        run_dir.write_model(result.model)
    return write_vertical_report(run_dir.path, f"Vertical FL: {config.name}", result.summary, result.history,
                                 result.attacks, result.certified, result.corruption)


class Transport(StrEnum):
    inprocess = "inprocess"
    http = "http"


class Role(StrEnum):
    active = "active"
    passive = "passive"


def vertical(
    config: Annotated[Path, typer.Argument(help="YAML config, e.g. configs/vertical/digits.yaml")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override KEY=VALUE")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="run directory")] = None,
    format_: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
    transport: Annotated[Transport, typer.Option(
        "--transport", help="inprocess: the full study in one process; http: train with one process per party")
    ] = Transport.inprocess,
    resume: Annotated[bool, typer.Option("--resume", help="with --transport http: continue the run in --out")] = False,
) -> None:
    """Align parties, train the split model with a Lipschitz top, attack the passive party."""
    resolved = load_vertical_config(config, set_ or [])
    if resume and (transport is Transport.inprocess or out is None):
        raise ConfigError("--resume needs --transport http and the --out folder of the run to continue")
    out_dir = out or default_out_dir(resolved.name)
    run_dir = open_run_dir(out_dir)  # before training, so a bad --out fails at once
    quiet = format_ is OutputFormat.json
    if transport is Transport.http:
        run_dir.write_config(resolved)
        summary = launch(resolved, out_dir / "config.yaml", out_dir, resume,
                         progress=(lambda message: None) if quiet else console.print)
        if quiet:
            print_json({"run_dir": str(out_dir), **summary})
            return
        output.print(f"test accuracy {summary['final_accuracy']:.4f} after {summary['epochs']} epochs; "
                     f"party folders and summary.json in {out_dir}")
        return
    result = run_study(resolved, progress=(lambda message: None) if quiet else console.print)
    report = write_run_dir(run_dir, resolved, result)
    summary = result.summary
    if quiet:
        print_json({"run_dir": str(out_dir), **summary})
        return
    accuracy = ", ".join(f"{name} {value:.4f}" for name, value in summary["accuracy"].items())
    output.print(f"test accuracy: {accuracy}")
    output.print(f"certified bound {summary['certified_bound']:.4g}; largest observed ratio "
                  f"{summary['lipschitz_check']['lipschitz']['max_ratio_adversarial']:.4g}")
    leak = summary["label_leakage"]
    output.print(f"label leakage: the passive party recovers {leak['recovery_rate']:.3f} of training labels "
                 f"from its gradients (chance {leak['chance_rate']:.3f}, majority class {leak['majority_rate']:.3f})")
    output.print(f"report: {report}")


def vertical_party(
    role: Annotated[Role, typer.Option("--role", help="active (labels; drives training) or passive (serves)")],
    data: Annotated[Path, typer.Option("--data", help="this party's data.safetensors")],
    directory: Annotated[Path, typer.Option("--dir", help="this party's folder (model, checkpoint)")],
    config: Annotated[Path | None, typer.Option("--config", help="active: the federation's YAML config")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="active: override KEY=VALUE")] = None,
    peer: Annotated[list[str] | None, typer.Option("--peer", help="active: passive party URL, in party order")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="active: continue from every party's checkpoint")] = False,
    listen: Annotated[str, typer.Option("--listen", help="passive: HOST:PORT to serve on (port 0: any)")] = (
        "127.0.0.1:0"),
    idle_timeout: Annotated[float, typer.Option("--idle-timeout", help="passive: stop after this many idle seconds")
                            ] = 600.0,
) -> None:
    """Run one party of a vertical federation over HTTP (see docs/vertical.md)."""
    folder = writable_dir(directory, "--dir")
    if role is Role.passive:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"--listen {listen!r} must be HOST:PORT, e.g. 127.0.0.1:8470")
        run_passive(data, folder, host, int(port), lambda url: output.print(f"listening on {url}"), idle_timeout)
        return
    if config is None or not peer:
        raise ConfigError("--role active needs --config and one --peer URL per passive party")
    resolved = load_vertical_config(config, set_ or [])
    summary = run_active(resolved, data, folder, peer, resume, progress=console.print)
    output.print(f"test accuracy {summary['final_accuracy']:.4f}; model in {folder / 'model.safetensors'}")


def vertical_predict(
    config: Annotated[Path, typer.Option("--config", help="the federation's YAML config")],
    data: Annotated[Path, typer.Option("--data", help="the active party's data.safetensors")],
    directory: Annotated[Path, typer.Option("--dir", help="the active party's folder (model.safetensors)")],
    peer: Annotated[list[str], typer.Option("--peer", help="passive party URL, in party order")],
    out: Annotated[Path, typer.Option("--out", help="predictions CSV (row,prediction)")],
    split: Annotated[str, typer.Option("--split", help="rows to predict: a split in the data files")] = "test",
    set_: Annotated[list[str] | None, typer.Option("--set", help="override KEY=VALUE")] = None,
) -> None:
    """Split inference: passive parties (vertical-party --role passive) send embeddings; this party predicts."""
    target = writable_file(out, "--out")
    logits = predict_active(load_vertical_config(config, set_ or []), data, directory, peer, split)
    rows = "".join(f"{row},{label}\n" for row, label in enumerate(logits.argmax(1).tolist()))
    target.write_text("row,prediction\n" + rows)
    output.print(f"{len(logits)} predictions in {target}")


def register(app: typer.Typer) -> None:
    app.command("vertical")(vertical)
    app.command("vertical-party")(vertical_party)
    app.command("vertical-predict")(vertical_predict)
