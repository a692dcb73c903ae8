"""Helpers shared by CLI commands: output format, JSON printing, the stderr console."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

from rich.console import Console

# Results go to stdout (``output``); progress and diagnostics to stderr (``console``), so
# `--format json` keeps stdout clean and text results can be piped.
console = Console(stderr=True)
output = Console()


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def print_json(payload: Any) -> None:
    """Print one JSON object on stdout, nothing else."""
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()
