"""Reading JSON files a user may hand the program: a missing or damaged file is one DataError line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedfleet.errors import DataError
from fedfleet.paths import os_reason


def read_json(path: Path, missing: str, problem: str, remedy: str) -> Any:
    """The content of the JSON file ``path``.

    Parameters
    ----------
    path : Path
    missing : str
        The error message when ``path`` does not exist.
    problem, remedy : str
        When it cannot be read or parsed, the message is ``"<path>: <problem> (<reason>); <remedy>"``,
        the reason being the operating system's or the decoder's first line.

    Raises
    ------
    DataError
        With one of those messages.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(missing) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc).split("\n")[0]
        raise DataError(f"{path}: {problem} ({reason}); {remedy}") from None
