"""``fedfleet privacy mask`` and ``fedfleet privacy occlude``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from fedfleet.cli.common import OutputFormat, console, output, print_json
from fedfleet.paths import writable_dir
from fedfleet.privacy.config import MaskJobConfig, OcclusionJobConfig, load_job_config
from fedfleet.privacy.jobs import run_mask_job, run_occlusion_job
from fedfleet.report.privacy import write_mask_report, write_occlusion_report

ConfigArg = Annotated[Path | None, typer.Argument(help="YAML config; defaults built in")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="override KEY=VALUE")]
OutOption = Annotated[Path | None, typer.Option("--out", help="output folder; default runs/<name>")]
FormatOption = Annotated[OutputFormat, typer.Option("--format")]


def _say(format_: OutputFormat) -> Callable[[str], None]:
    """Progress messages on stderr in text mode, silence in JSON mode."""

    def progress(message: str) -> None:
        if format_ is OutputFormat.text:
            console.print(message)

    return progress


def mask(config: ConfigArg = None, set_: SetOption = None, out: OutOption = None,
         format_: FormatOption = OutputFormat.text) -> None:
    """Select an encryption mask: train, score candidates, attack them, write a report."""
    resolved = load_job_config(MaskJobConfig, config, set_ or [])
    out_dir = writable_dir(out or Path("runs") / resolved.name, "--out")  # before the job: a bad --out fails at once
    result = run_mask_job(resolved, _say(format_))
    page = write_mask_report(result, out_dir)
    if format_ is OutputFormat.json:
        print_json({"out_dir": str(out_dir), **result.summary()})
        return
    chosen = result.chosen
    verdict = "" if result.selector.qualified_ else " (least bad: no candidate meets the rule's caps)"
    output.print(f"target mask {chosen.key.name}{verdict}: encrypted-model accuracy {chosen.encrypted_accuracy:.3f}, "
                  f"original-model accuracy {chosen.original_accuracy:.3f}, "
                  f"worst attack SSIM {chosen.worst_attack_ssim:.3f}")
    output.print(f"report: {page}")


def occlude(config: ConfigArg = None, set_: SetOption = None, out: OutOption = None,
            format_: FormatOption = OutputFormat.text) -> None:
    """Select an occlusion region: score candidates for security and availability, write a report."""
    resolved = load_job_config(OcclusionJobConfig, config, set_ or [])
    out_dir = writable_dir(out or Path("runs") / resolved.name, "--out")  # before the job: a bad --out fails at once
    result = run_occlusion_job(resolved, _say(format_))
    page = write_occlusion_report(result, out_dir)
    if format_ is OutputFormat.json:
        print_json({"out_dir": str(out_dir), **result.summary()})
        return
    chosen = result.chosen
    output.print(f"target region {chosen.region.name}: security {chosen.security:.3f}, "
                  f"availability {chosen.availability:.3f}")
    output.print(f"report: {page}")


def register(app: typer.Typer) -> None:
    """Add the ``privacy`` command group."""
    group = typer.Typer(help="Image privacy: encryption masks and occlusion.", no_args_is_help=True)
    group.command("mask")(mask)
    group.command("occlude")(occlude)
    app.add_typer(group, name="privacy")
