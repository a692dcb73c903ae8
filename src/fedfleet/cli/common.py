"""Helpers shared by CLI commands: output format, JSON printing, the stderr console."""

from __future__ import annotations

import json
import math
import sys
from enum import StrEnum
from typing import Any

from rich.console import Console

# Results go to stdout (``output``); progress and diagnostics to stderr (``console``), so
# `--format json` keeps stdout clean and text results can be piped.
console = Console(stderr=True)
output = Console()


class RunInterrupted(Exception):
    """Ctrl-C during a command; the message says what was kept and how to continue (exit code 130)."""


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinite float (in nested dicts, lists and tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    return value


def print_json(payload: Any) -> None:
    """Print one strict JSON object on stdout, nothing else: NaN and infinities become null."""
    sys.stdout.write(json.dumps(finite_json(payload), default=str, allow_nan=False) + "\n")
    sys.stdout.flush()
