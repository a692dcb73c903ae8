"""``fedfleet traffic extract | train | classify | evaluate``.

The traffic library (pandas, scikit-learn, nfstream) is imported when a traffic command
runs, so the rest of the CLI neither pays for it nor needs the ``traffic`` extra.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fedfleet.cli.common import OutputFormat, console, output, print_json
from fedfleet.errors import DataError, FedfleetError

if TYPE_CHECKING:
    from fedfleet.traffic.extract import Extraction
    from fedfleet.traffic.schema import ColumnSpec

FormatOption = Annotated[OutputFormat, typer.Option("--format")]
DropOption = Annotated[list[str] | None, typer.Option("--drop-label", help="ignore flows with this label")]
KEY_COLUMNS = ("capture", "src_ip", "src_port", "dst_ip", "dst_port", "protocol")


def _require_extra() -> None:
    missing = [name for name in ("pandas", "pyarrow") if importlib.util.find_spec(name) is None]
    if missing:
        raise FedfleetError(f"traffic commands need {', '.join(missing)}; "
                            "install the extra: pip install 'fedfleet[traffic]'")


def _report_errors(extraction: Extraction | None) -> None:
    for error in extraction.errors if extraction else []:
        console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)


def extract(
    pcaps: Annotated[list[Path], typer.Argument(help="pcap/pcapng files or folders of them")],
    out: Annotated[Path, typer.Option("--out", help="flow table to write (.parquet or .csv)")],
    cache: Annotated[Path | None, typer.Option("--cache", help="per-capture flow cache folder")] = None,
    format_: FormatOption = OutputFormat.text,
) -> None:
    """Turn packet captures into bidirectional flows; a failing capture is reported, not fatal."""
    _require_extra()
    from fedfleet.traffic.extract import extract_flows

    extraction = extract_flows(pcaps, cache_dir=cache)
    _report_errors(extraction)
    if extraction.flows.empty:
        raise DataError("no flows extracted from any capture")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        extraction.flows.to_csv(out, index=False)
    else:
        extraction.flows.to_parquet(out, index=False)
    summary = {"out": str(out), "flows": len(extraction.flows),
               "captures": int(extraction.flows["capture"].nunique()),
               "failed_captures": len(extraction.errors), "packets": extraction.packets,
               "seconds": round(extraction.seconds, 3),
               "packets_per_second": round(extraction.packets_per_second, 1)}
    if format_ is OutputFormat.json:
        print_json(summary)
        return
    output.print(f"{summary['flows']} flows from {summary['captures']} captures "
                  f"({summary['failed_captures']} failed), {extraction.packets} packets "
                  f"at {extraction.packets_per_second:,.0f} packets/s -> {out}", soft_wrap=True)


def _spec(spec_file: Path | None, label: str | None) -> ColumnSpec | None:
    from fedfleet.traffic.schema import read_spec

    spec = read_spec(spec_file) if spec_file else None
    return spec.with_label(label) if spec else None


def train(
    flows: Annotated[list[Path], typer.Argument(help="flow tables (.parquet/.csv) or captures")],
    label: Annotated[str, typer.Option("--label", help="column holding the traffic type")],
    out: Annotated[Path, typer.Option("--out", help="model folder to write")],
    classifier: Annotated[str, typer.Option("--classifier", help="tree | mlp")] = "tree",
    spec_file: Annotated[Path | None, typer.Option("--spec", help="YAML column spec")] = None,
    port_mode: Annotated[str | None, typer.Option(
        "--port-mode", help="integer | bucket | normalise; default integer (tree), normalise (mlp)")] = None,
    scaling: Annotated[str, typer.Option("--scaling", help="standard | minmax | log-standard")] = "standard",
    drop_label: DropOption = None,
    min_class_flows: Annotated[int, typer.Option("--min-class-flows", min=1)] = 1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    format_: FormatOption = OutputFormat.text,
) -> None:
    """Fit the preprocessing and a classifier on labelled flows; save them as a model folder."""
    _require_extra()
    from fedfleet.traffic.model import fit_model
    from fedfleet.traffic.readers import filter_labels, read_flows

    table, spec, extraction = read_flows(list(flows), _spec(spec_file, label))
    _report_errors(extraction)
    table = filter_labels(table, label, tuple(drop_label or ()), min_class_flows)
    default_ports = "normalise" if classifier == "mlp" else "integer"
    preprocessing = {"port_mode": port_mode or default_ports, "scaling": scaling}
    model = fit_model(table, spec.with_label(label), classifier, preprocessing, random_state=seed)
    model.save(out)
    summary = {"out": str(out), "classifier": classifier, "flows": len(table),
               "features": len(model.preprocessor.feature_names_out_), "classes": model.classes}
    if format_ is OutputFormat.json:
        print_json(summary)
        return
    output.print(f"{classifier} model on {len(table)} flows, {summary['features']} features, "
                  f"{len(model.classes)} classes -> {out}")


def classify(
    model_dir: Annotated[Path, typer.Argument(help="model folder from `traffic train`")],
    flows: Annotated[list[Path], typer.Argument(help="flow tables or packet captures")],
    out: Annotated[Path | None, typer.Option("--out", help="predictions CSV; default stdout")] = None,
) -> None:
    """Predict the traffic type of every flow."""
    _require_extra()
    from fedfleet.traffic.model import TrafficModel
    from fedfleet.traffic.readers import read_flows

    model = TrafficModel.load(model_dir)
    table, _, extraction = read_flows(list(flows), model.spec)
    _report_errors(extraction)
    probabilities = model.predict_proba(table)
    predictions = table[[c for c in KEY_COLUMNS if c in table.columns]].copy()
    predictions["predicted"] = [model.classes[i] for i in probabilities.argmax(axis=1)]
    predictions["probability"] = probabilities.max(axis=1).round(4)
    if out is None:
        typer.echo(predictions.to_csv(index=False), nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(out, index=False)
    output.print(f"{len(predictions)} flows classified -> {out}")


def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="model folder from `traffic train`")],
    flows: Annotated[list[Path], typer.Argument(help="labelled flow tables or captures")],
    label: Annotated[str, typer.Option("--label", help="column holding the true traffic type")],
    plot: Annotated[Path | None, typer.Option("--plot", help="confusion-matrix PNG to write")] = None,
    drop_label: DropOption = None,
    format_: FormatOption = OutputFormat.text,
) -> None:
    """Accuracy, macro-F1, per-class precision/recall and the confusion matrix on labelled flows."""
    _require_extra()
    import pandas as pd

    from fedfleet.traffic.evaluate import classification_metrics
    from fedfleet.traffic.model import TrafficModel
    from fedfleet.traffic.readers import filter_labels, read_flows

    model = TrafficModel.load(model_dir)
    table, _, extraction = read_flows(list(flows), model.spec.with_label(label))
    _report_errors(extraction)
    table = filter_labels(table, label, tuple(drop_label or ()))
    metrics = classification_metrics(table[label], model.predict(table))
    if plot is not None:
        from fedfleet.report.traffic import plot_confusion

        plot_confusion(metrics["confusion"]["labels"], metrics["confusion"]["matrix"], plot,
                       title=f"{model.classifier_name} on {len(table)} flows")
    if format_ is OutputFormat.json:
        print_json(metrics)
        return
    output.print(f"{metrics['num_flows']} flows: accuracy {metrics['accuracy']:.3f}, "
                  f"macro-F1 {metrics['macro_f1']:.3f}")
    rows = pd.DataFrame.from_dict(metrics["per_class"], orient="index")
    output.print(rows.to_string(float_format=lambda v: f"{v:.3f}"), markup=False, highlight=False,
                  soft_wrap=True)
    if plot is not None:
        output.print(f"confusion matrix: {plot}")


def register(app: typer.Typer) -> None:
    """Add the ``traffic`` command group."""
    group = typer.Typer(help="Traffic classification from flows and packet captures.",
                        no_args_is_help=True)
    group.command("extract")(extract)
    group.command("train")(train)
    group.command("classify")(classify)
    group.command("evaluate")(evaluate)
    app.add_typer(group, name="traffic")
