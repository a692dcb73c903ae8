"""``fedfleet privacy mask``, ``occlude`` and ``predict``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import torch
import typer

from fedfleet.cli.common import OutputFormat, console, output, print_json
from fedfleet.errors import DataError
from fedfleet.paths import writable_dir, writable_file, write_output
from fedfleet.privacy.config import MaskJobConfig, OcclusionJobConfig, load_job_config
from fedfleet.privacy.jobs import load_job_data, run_mask_job, run_occlusion_job
from fedfleet.privacy.predict import load_protected_model, read_images, read_labels
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


def _public_pool(model_dir: Path) -> torch.Tensor:
    """The job's public pool (for ``mix`` keys), rebuilt from the folder's config.yaml."""
    config_file = model_dir / "config.yaml"
    if not config_file.is_file():
        raise DataError(f"{model_dir} has no config.yaml; a mix key needs it to rebuild the public pool")
    config = load_job_config(MaskJobConfig, config_file)
    return load_job_data(config.data, config.seed, config.data.public_size).public.x


def predict(
    model_dir: Annotated[Path, typer.Argument(help="output folder of privacy mask or occlude")],
    images: Annotated[Path, typer.Argument(help="IDX images file or a folder of PNGs")],
    labels: Annotated[Path | None, typer.Option("--labels", help="IDX labels file: report accuracy")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="predictions CSV")] = None,
    format_: FormatOption = OutputFormat.text,
) -> None:
    """Recognise images: apply the stored key or region, run the saved model."""
    if out is not None:
        writable_file(out, "--out")
    model = load_protected_model(model_dir, lambda: _public_pool(model_dir))
    clear = read_images(images, model.input_shape)
    truth = None if labels is None else read_labels(labels, len(clear), len(model.classes)).numpy()
    predicted = model.predict(clear)
    accuracy = None if truth is None else float((predicted == truth).mean())
    if out is not None:
        rows = ["index,predicted,class" + ("" if truth is None else ",label")]
        rows += [f"{i},{p},{model.classes[p]}" + ("" if truth is None else f",{truth[i]}")
                 for i, p in enumerate(predicted.tolist())]
        write_output(out, "\n".join(rows) + "\n")
    if format_ is OutputFormat.json:
        print_json({"images": len(clear), "accuracy": accuracy, "predictions": None if out is None else str(out),
                    "predicted": predicted.tolist()})
        return
    output.print(f"predicted {len(clear)} images" + ("" if accuracy is None else f"; accuracy {accuracy:.4f}"))
    if out is not None:
        output.print(f"predictions: {out}")


def register(app: typer.Typer) -> None:
    """Add the ``privacy`` command group."""
    group = typer.Typer(help="Image privacy: encryption masks and occlusion.", no_args_is_help=True)
    group.command("mask")(mask)
    group.command("occlude")(occlude)
    group.command("predict")(predict)
    app.add_typer(group, name="privacy")
