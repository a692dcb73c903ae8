"""``fedfleet traffic extract | train | classify | evaluate``.

``evaluate --split random|capture|both`` refits a model folder's recipe on a training split
of labelled flows and scores the held-out flows (a random flow split, a split by capture).

The traffic library (pandas, scikit-learn, nfstream) is imported when a traffic command
runs, so the rest of the CLI neither pays for it nor needs the ``traffic`` extra.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fedfleet.cli.common import OutputFormat, console, output, print_json
from fedfleet.errors import ConfigError, DataError, FedfleetError
from fedfleet.paths import os_reason, writable_dir, writable_file

if TYPE_CHECKING:
    from fedfleet.traffic.extract import Extraction
    from fedfleet.traffic.model import TrafficModel
    from fedfleet.traffic.schema import ColumnSpec

FormatOption = Annotated[OutputFormat, typer.Option("--format")]
DropOption = Annotated[list[str] | None, typer.Option("--drop-label", help="ignore flows with this label")]
EncodingOption = Annotated[str | None, typer.Option(
    "--encoding", help="text encoding of CSV tables, e.g. cp1252 for CIC-IDS2017")]
TABLE_SUFFIXES = (".parquet", ".csv")  # what `traffic extract --out` writes
PLOT_SUFFIXES = ("", ".png", ".svg", ".pdf")  # what `traffic evaluate --plot` writes
TRANSPORT_NAMES = frozenset({"protocol", "proto", "ip_proto", "ip_protocol", "l4_proto", "pr"})  # of the 5-tuple


def _require_extra() -> None:
    missing = [name for name in ("pandas", "pyarrow") if importlib.util.find_spec(name) is None]
    if missing:
        raise FedfleetError(f"traffic commands need {', '.join(missing)}; "
                            "install the extra: pip install 'fedfleet[traffic]'")


def _report_errors(extraction: Extraction | None) -> None:
    for error in extraction.errors if extraction else []:
        console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)


def _holds_only_a_model(folder: Path) -> None:
    """Refuse an --out folder holding anything but an earlier model's files (which training replaces)."""
    from fedfleet.traffic.model import MODEL_FOLDER_FILES

    others = sorted(path.name for path in folder.iterdir() if path.name not in MODEL_FOLDER_FILES)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise ConfigError(f"--out {folder} holds files that are not a traffic model's ({shown}); "
                          "give a new or empty folder, or an earlier model folder to replace")


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn a failed write (disk full, /dev/full, permission lost) into one line naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise DataError(f"cannot write {path}: {os_reason(exc)}") from None


def _flow_key(spec: ColumnSpec, columns: list[str]) -> list[str]:
    """The columns that identify a flow, in table order: the spec's key columns (capture,
    row ids, addresses, ports, timestamps) and the transport protocol, the rest of the 5-tuple."""
    key = set(spec.key_columns(columns))
    return [name for name in columns if name in key or name.strip().lower() in TRANSPORT_NAMES]


def _note_training(model: TrafficModel) -> None:
    """Say on stderr which columns were dropped and which classes are too small to validate."""
    dropped = list(model.preprocessor.dropped_)
    if dropped:
        console.print(f"note: dropped column(s) with no valid value: {', '.join(dropped)}",
                      markup=False, highlight=False, soft_wrap=True)
    too_small = model.training["too_small_to_validate"]
    if too_small:
        held_out = model.training["validation_flows"]
        why = ("no flow of theirs is in the early-stopping validation share" if held_out
               else "a single flow, which no held-out split can both train on and test")
        shown = ", ".join(too_small[:8]) + (", ..." if len(too_small) > 8 else "")
        verb = "is" if len(too_small) == 1 else "are"
        console.print(f"note: {len(too_small)} of {len(model.classes)} classes {verb} too small to validate "
                      f"({why}): {shown}; they are trained on, but no score tells how well",
                      markup=False, highlight=False, soft_wrap=True)


def extract(
    pcaps: Annotated[list[Path], typer.Argument(help="pcap/pcapng files or folders of them")],
    out: Annotated[Path, typer.Option("--out", help="flow table to write (.parquet or .csv)")],
    cache: Annotated[Path | None, typer.Option("--cache", help="per-capture flow cache folder")] = None,
    format_: FormatOption = OutputFormat.text,
) -> None:
    """Turn packet captures into bidirectional flows; a failing capture is reported, not fatal."""
    _require_extra()
    from fedfleet.traffic.extract import extract_flows

    writable_file(out)
    if out.suffix.lower() not in TABLE_SUFFIXES:
        raise ConfigError(f"--out {out}: a flow table ends in .parquet or .csv, not {out.suffix or 'no suffix'!r}")
    extraction = extract_flows(pcaps, cache_dir=cache)
    if extraction.flows.empty:
        reasons = "; ".join(map(str, extraction.errors[:3])) + ("; ..." if len(extraction.errors) > 3 else "")
        raise DataError(f"no flows extracted from any capture ({reasons or 'no pcap or pcapng file found'})")
    _report_errors(extraction)
    with _writing(out):
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


def _note_guessed_spec(spec: ColumnSpec, spec_file: Path | None) -> None:
    """Say on stderr which roles were guessed when a table matched no built-in spec."""
    from fedfleet.traffic.schema import CIC_SPEC, NFSTREAM_SPEC, describe_guess

    if spec_file is None and spec not in (NFSTREAM_SPEC, CIC_SPEC):
        console.print(f"note: {describe_guess(spec)}", markup=False, highlight=False, soft_wrap=True)


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
    classifier_param: Annotated[list[str] | None, typer.Option(
        "--classifier-param", help="KEY=VALUE classifier parameter, repeatable (e.g. max_iter=300)")] = None,
    class_weight: Annotated[str | None, typer.Option(
        "--class-weight", help="balanced | none | LABEL=WEIGHT,... (weight of each class in the loss)")] = None,
    encoding: EncodingOption = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    format_: FormatOption = OutputFormat.text,
) -> None:
    """Fit the preprocessing and a classifier on labelled flows; save them as a model folder."""
    _require_extra()
    from fedfleet.traffic.classifiers import build_classifier, parse_class_weight, parse_classifier_params
    from fedfleet.traffic.model import fit_model
    from fedfleet.traffic.readers import filter_labels, read_flows

    params = parse_classifier_params(classifier_param or [])
    if class_weight is not None:
        if "class_weight" in params:
            raise ConfigError("give the class weight once: --class-weight or --classifier-param class_weight=...")
        params["class_weight"] = parse_class_weight(class_weight)
    build_classifier(classifier, random_state=seed, **params)  # a bad parameter fails before any reading
    _holds_only_a_model(writable_dir(out))
    table, spec, extraction = read_flows(list(flows), _spec(spec_file, label), encoding=encoding)
    _report_errors(extraction)
    _note_guessed_spec(spec, spec_file)
    table = filter_labels(table, label, tuple(drop_label or ()), min_class_flows)
    default_ports = "normalise" if classifier == "mlp" else "integer"
    preprocessing = {"port_mode": port_mode or default_ports, "scaling": scaling}
    model = fit_model(table, spec.with_label(label), classifier, preprocessing, params, random_state=seed)
    _note_training(model)
    with _writing(out):
        model.save(out)
    too_small = model.training["too_small_to_validate"]
    summary = {"out": str(out), "classifier": classifier, "flows": len(table),
               "features": len(model.preprocessor.feature_names_out_), "classes": model.classes,
               "too_small_to_validate": too_small, "dropped_columns": list(model.preprocessor.dropped_)}
    if format_ is OutputFormat.json:
        print_json(summary)
        return
    output.print(f"{classifier} model on {len(table)} flows, {summary['features']} features, "
                  f"{len(model.classes)} classes -> {out}")


def classify(
    model_dir: Annotated[Path, typer.Argument(help="model folder from `traffic train`")],
    flows: Annotated[list[Path], typer.Argument(help="flow tables or packet captures")],
    out: Annotated[Path | None, typer.Option("--out", help="predictions CSV; default stdout")] = None,
    encoding: EncodingOption = None,
) -> None:
    """Predict the traffic type of every flow; predictions keep the table's flow key columns
    (capture, flow id, addresses, ports, timestamps)."""
    _require_extra()
    from fedfleet.traffic.model import TrafficModel
    from fedfleet.traffic.readers import read_flows

    if out is not None:
        writable_file(out)
        if out.suffix.lower() not in ("", ".csv"):
            raise ConfigError(f"--out {out}: predictions are written as CSV; give a name ending in .csv, "
                              f"not {out.suffix!r}")
    model = TrafficModel.load(model_dir)
    table, _, extraction = read_flows(list(flows), model.spec, encoding=encoding)
    _report_errors(extraction)
    probabilities = model.predict_proba(table)
    predictions = table[_flow_key(model.spec, list(table.columns))].copy()
    predictions["predicted"] = [model.classes[i] for i in probabilities.argmax(axis=1)]
    predictions["probability"] = probabilities.max(axis=1).round(4)
    if out is None:
        typer.echo(predictions.to_csv(index=False), nl=False)
        return
    with _writing(out):
        predictions.to_csv(out, index=False)
    output.print(f"{len(predictions)} flows classified -> {out}")


def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="model folder from `traffic train`")],
    flows: Annotated[list[Path], typer.Argument(help="labelled flow tables or captures")],
    label: Annotated[str, typer.Option("--label", help="column holding the true traffic type")],
    plot: Annotated[Path | None, typer.Option("--plot", help="confusion-matrix PNG to write")] = None,
    drop_label: DropOption = None,
    split: Annotated[str | None, typer.Option(
        "--split", help="random | capture | both: refit the model's recipe on a training split of "
                        "FLOWS and score the held-out flows (capture: unseen capture files)")] = None,
    test_size: Annotated[float, typer.Option("--test-size", help="held-out share with --split")] = 0.25,
    group: Annotated[str, typer.Option("--group", help="column naming each flow's capture/site")] = "capture",
    min_class_flows: Annotated[int, typer.Option("--min-class-flows", min=1)] = 1,
    encoding: EncodingOption = None,
    seed: Annotated[int, typer.Option("--seed", help="split and classifier seed with --split")] = 0,
    format_: FormatOption = OutputFormat.text,
) -> None:
    """Accuracy, macro-F1, per-class precision/recall and the confusion matrix on labelled flows.

    Without --split the saved model scores FLOWS as they are. With --split the model folder is
    a recipe (column spec, preprocessing, classifier and parameters): it is refitted on the
    training side of each split of FLOWS and scored on the held-out side, on a random flow
    split, a split by capture file, or both.
    """
    _require_extra()
    from fedfleet.traffic.evaluate import SPLITS, check_split, classification_metrics, evaluate_on_split
    from fedfleet.traffic.model import TrafficModel
    from fedfleet.traffic.readers import filter_labels, read_flows

    splits = _splits(split, SPLITS)
    if not splits and (test_size != 0.25 or group != "capture" or seed != 0):
        raise ConfigError("--test-size, --group and --seed apply only with --split")
    for name in splits or ("",):
        path = _split_plot_path(plot, name, len(splits)) if splits else plot
        if path is not None:
            writable_file(path, "--plot")
            if path.suffix.lower() not in PLOT_SUFFIXES:
                raise ConfigError(f"--plot {path}: the confusion matrix is saved as .png, .svg or .pdf, "
                                  f"not {path.suffix!r}; give a name ending in one of those")
    model = TrafficModel.load(model_dir)
    table, _, extraction = read_flows(list(flows), model.spec.with_label(label), encoding=encoding)
    _report_errors(extraction)
    table = filter_labels(table, label, tuple(drop_label or ()), min_class_flows)
    if table.empty:
        raise DataError(f"no flow in {', '.join(map(str, flows))} has a label in column {label!r} "
                        "(after --drop-label and --min-class-flows); give labelled flows")
    for name in splits:  # every split is possible before the first one is computed
        check_split(table, name, test_size, group)
    if not splits:
        metrics = classification_metrics(table[label], model.predict(table))
        if plot is not None:
            _plot(metrics, plot, f"{model.classifier_name} on {len(table)} flows")
        if format_ is OutputFormat.json:
            print_json(metrics)
            return
        _print_metrics(f"{metrics['num_flows']} flows", metrics, plot)
        return
    results = {}
    for name in splits:
        console.print(f"{name} split: refitting {model.classifier_name} on the training flows ...")
        metrics = evaluate_on_split(model, table, name, label, test_size, seed, group)
        path = _split_plot_path(plot, name, len(splits))
        if path is not None:
            _plot(metrics, path, f"{model.classifier_name}, {name} split, {metrics['test_flows']} test flows")
        results[name] = metrics | ({"plot": str(path)} if path else {})
    if format_ is OutputFormat.json:
        print_json(results)
        return
    for name, metrics in results.items():
        captures = (f" from {metrics['test_captures']} of {metrics['captures']} captures"
                    if "test_captures" in metrics else "")
        _print_metrics(f"{name} split, {metrics['test_flows']} held-out flows{captures} "
                       f"(trained on {metrics['train_flows']})", metrics,
                       Path(metrics["plot"]) if "plot" in metrics else None)
        if metrics["too_small_to_validate"]:
            output.print(f"classes too small to validate on the training side: "
                         f"{', '.join(metrics['too_small_to_validate'])}", markup=False, highlight=False,
                         soft_wrap=True)


def _splits(split: str | None, known: tuple[str, ...]) -> tuple[str, ...]:
    if split is None:
        return ()
    if split == "both":
        return known
    if split not in known:
        raise ConfigError(f"--split must be random, capture or both, not {split!r}")
    return (split,)


def _split_plot_path(plot: Path | None, split: str, count: int) -> Path | None:
    """The plot path as given for one split; ``NAME-random.png``, ``NAME-capture.png`` for both."""
    if plot is None or count == 1:
        return plot
    return plot.with_name(f"{plot.stem}-{split}{plot.suffix or '.png'}")


def _plot(metrics: dict[str, Any], path: Path, title: str) -> None:
    from fedfleet.report.traffic import plot_confusion

    plot_confusion(metrics["confusion"]["labels"], metrics["confusion"]["matrix"], path, title=title)


def _print_metrics(heading: str, metrics: dict[str, Any], plot: Path | None) -> None:
    import pandas as pd

    output.print(f"{heading}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}",
                 markup=False, highlight=False, soft_wrap=True)
    rows = pd.DataFrame.from_dict(metrics["per_class"], orient="index")
    output.print(rows.to_string(float_format=lambda v: f"{v:.3f}"), markup=False, highlight=False,
                 soft_wrap=True)
    if plot is not None:
        output.print(f"confusion matrix: {plot}", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``traffic`` command group."""
    group = typer.Typer(help="Traffic classification from flows and packet captures.",
                        no_args_is_help=True)
    group.command("extract")(extract)
    group.command("train")(train)
    group.command("classify")(classify)
    group.command("evaluate")(evaluate)
    app.add_typer(group, name="traffic")
