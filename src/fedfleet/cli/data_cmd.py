"""``fedfleet data info`` (partition statistics) and ``fedfleet data fetch``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fedfleet.cli.common import OutputFormat, output, print_json
from fedfleet.config import load_config
from fedfleet.data.datasets import download_fashion_mnist, find_fashion_mnist
from fedfleet.data.partition import partition_table
from fedfleet.fl.federated_data import build_federated_data

data_app = typer.Typer(help="Data sets and partitions.", no_args_is_help=True)


@data_app.command("info")
def info(
    config: Annotated[Path | None, typer.Argument(help="YAML config; default configs/default.yaml")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override KEY=VALUE")] = None,
    format_: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Per-client sizes, classes present and Non-IID degree (JSD to the global label mix)."""
    resolved = load_config(config, set_ or [])
    data = build_federated_data(resolved.data, resolved.seed)
    rows = partition_table(data.label_histograms())
    degrees = [r["noniid_degree"] for r in rows]
    overview = {
        "dataset": resolved.data.dataset,
        "partition": resolved.data.partition,
        "clients": len(rows),
        "train_samples": int(sum(r["samples"] for r in rows)),  # type: ignore[misc]
        "test_samples": len(data.test),
        "mean_noniid_degree": float(sum(degrees) / len(degrees)),  # type: ignore[arg-type]
    }
    if format_ is OutputFormat.json:
        print_json({**overview, "clients_table": rows})
        return
    table = Table(title=", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in overview.items()))
    for column in rows[0]:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    output.print(table)


@data_app.command("fetch")
def fetch() -> None:
    """Download Fashion-MNIST into ~/.cache/fedfleet and verify its checksums (unless already installed)."""
    installed = find_fashion_mnist()
    if installed is not None:
        output.print(f"Fashion-MNIST already installed in {installed}")
        return
    output.print(f"Fashion-MNIST ready in {download_fashion_mnist()}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
