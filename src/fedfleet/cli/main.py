"""The ``fedfleet`` console script: registers every command and turns errors into one line."""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

import typer

from fedfleet.cli.common import RunInterrupted
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
    "fedfleet.cli.multijob_cmd",
)


_registered: set[str] = set()


def _register_commands() -> None:
    """Add each command group to ``app`` once, however often :func:`main` is called in one process."""
    for name in COMMAND_MODULES:
        if name not in _registered:
            importlib.import_module(name).register(app)
            _registered.add(name)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; bad input (a FedfleetError or a usage error) is one line, exit code 2."""
    _register_commands()
    try:
        code = app(args=argv, prog_name="fedfleet", standalone_mode=False)
    except FedfleetError as exc:
        _fail(str(exc))
    except RunInterrupted as exc:
        _interrupted(str(exc))
    except OSError as exc:
        if exc.filename is None:  # not about a file the user named: a bug to see in full
            raise
        _fail(f"cannot write or read {exc.filename}: {exc.strerror or type(exc).__name__}")
    except typer.Abort:
        _interrupted()
    except typer.TyperException as exc:  # usage errors: unknown command or option, bad option value
        message = exc.format_message()
        if not message:  # no arguments: the help was printed
            sys.exit(2)
        _fail(f"{message} (see fedfleet --help)")
    except KeyboardInterrupt:
        _interrupted()
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _interrupted(message: str = "interrupted") -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":
    main()
