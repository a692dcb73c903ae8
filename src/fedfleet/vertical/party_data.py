"""A party's own data file: its sample IDs and columns per split, in its own row order.

``data.safetensors`` holds ``x/<split>`` (rows, features) for each split (``train``,
``test``) and, for the active party, ``y/<split>`` (labels). Its metadata holds the party
number, the number of classes (active party) and ``ids/<split>``: a JSON list of the
split's sample IDs (strings or integers), one per row. Nothing else is read, so a party
can write this file from its own table; parsing it runs no code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from fedfleet.errors import DataError

ACTIVE_DIR = "party-active"
DATA_FILE = "data.safetensors"
PartyId = str | int


def passive_dir(index: int) -> str:
    """Folder name of passive party ``index`` (1-based): ``party-passive-<index - 1>``."""
    return f"party-passive-{index - 1}"


def write_party_data(path: Path, party: int, x: dict[str, torch.Tensor], ids: dict[str, Sequence[PartyId]],
                     y: dict[str, torch.Tensor] | None = None, num_classes: int | None = None) -> Path:
    """Write one party's unaligned table to ``path`` (see the module docstring); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"x/{split}": value for split, value in x.items()}
    metadata = {"party": str(party), **{f"ids/{split}": json.dumps(list(ids[split])) for split in x}}
    if y is not None:
        tensors |= {f"y/{split}": value for split, value in y.items()}
        metadata["num_classes"] = str(num_classes)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


def read_party_data(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, list[PartyId]], dict[str, str]]:
    """(tensors, IDs per split, metadata) of a party data file.

    Raises
    ------
    DataError
        If the file is missing or damaged, lacks its party number or columns, or a split's
        IDs are not a JSON list of strings or integers, one per row.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
    except FileNotFoundError:
        raise DataError(f"party data file {path} is missing; "
                        "write the party folders with fedfleet vertical --transport http") from None
    except (SafetensorError, OSError) as exc:
        raise DataError(f"party data file {path} is damaged ({exc})") from None
    if not metadata.get("party", "").isdigit() or not any(key.startswith("x/") for key in tensors):
        raise DataError(f"{path} is not a party data file (no 'party' metadata or no x/<split> columns)")
    ids = {}
    for key, x in tensors.items():
        if key.startswith("x/"):
            ids[key[2:]] = _ids(metadata.get(f"ids/{key[2:]}"), len(x), f"{path} ids/{key[2:]}")
    return tensors, ids, metadata


def _ids(text: str | None, rows: int, what: str) -> list[PartyId]:
    try:
        ids = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        ids = None
    if not isinstance(ids, list) or len(ids) != rows or not all(
            isinstance(i, str | int) and not isinstance(i, bool) for i in ids):
        raise DataError(f"{what} must be a JSON list of {rows} sample IDs (strings or integers), one per row")
    return ids
