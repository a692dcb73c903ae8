"""The ``fedfleet`` console script: registers every command and turns errors into one line."""

from __future__ import annotations

import importlib
import sys

import typer

from fedfleet.errors import FedfleetError

app = typer.Typer(
    name="fedfleet",
    help="Federated and privacy-preserving learning across heterogeneous fleets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


# Each module defines ``register(app)``; one line here per command group.
COMMAND_MODULES = (
    "fedfleet.cli.run_cmd",
    "fedfleet.cli.data_cmd",
    "fedfleet.cli.privacy_cmd",
    "fedfleet.cli.place_cmd",
    "fedfleet.cli.traffic_cmd",
    "fedfleet.cli.vertical_cmd",
)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; a FedfleetError becomes ``error: ...`` and exit code 2."""
    _register_commands()
    try:
        app(args=argv, prog_name="fedfleet")
    except FedfleetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
