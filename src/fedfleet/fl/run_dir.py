"""The files of a run directory, per the public contract."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from safetensors.torch import save_file
from torch import nn

from fedfleet.config import dump_config
from fedfleet.errors import CheckpointError, ConfigError
from fedfleet.fl.history import json_line, write_jsonl
from fedfleet.fl.validation import Rejection
from fedfleet.paths import writable_dir

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.safetensors"
REJECTIONS_FILE = "rejections.jsonl"
CHECKPOINT_DIR = "checkpoint"
REPORT_FILE = "report.html"
REPORT_PLOTS = ("report_accuracy_round.png", "report_accuracy_time.png",  # report.html's images
                "report_staleness.png", "report_participation.png")
RUN_FILES = frozenset({CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, MODEL_FILE, REJECTIONS_FILE, CHECKPOINT_DIR,
                       REPORT_FILE, *REPORT_PLOTS})


def prepare_new_run_dir(path: str | Path, overwrite: bool = False) -> Path:
    """Check that a new run can be written to ``path``, before any work.

    Parameters
    ----------
    path : str or Path
        The run directory; created if missing.
    overwrite : bool
        Replace an earlier run in ``path``: its files (config.yaml, metrics, checkpoint/, ...) are
        deleted. A folder holding anything else is refused all the same.

    Returns
    -------
    Path
        ``path``, existing, writable and empty.

    Raises
    ------
    ConfigError
        ``path`` is a file or under one, cannot be written, or is not empty (so an earlier run's
        checkpoint cannot be mixed into this one on ``--resume``).
    """
    folder = writable_dir(path, "run directory")
    present = sorted(entry.name for entry in folder.iterdir())
    if not present:
        return folder
    listed = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
    foreign = [name for name in present if name not in RUN_FILES]
    if foreign:
        raise ConfigError(f"run directory {folder} is not empty and not a run directory (holds {listed}); "
                          "choose a new or empty directory")
    if not overwrite:
        raise ConfigError(f"run directory {folder} already holds a run ({listed}); choose a new or empty "
                          "directory, or pass --overwrite (overwrite=True in the Python API) to replace it")
    for name in present:
        entry = folder / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return folder


class RunDirectory:
    """Writes config.yaml, metrics.jsonl, summary.json, model.safetensors, rejections.jsonl and checkpoint/."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def write_config(self, config: BaseModel) -> None:
        """The fully resolved config of the run (any validated config model)."""
        (self.path / CONFIG_FILE).write_text(dump_config(config))

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        write_jsonl(self.path / METRICS_FILE, records)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with (self.path / METRICS_FILE).open("a") as handle:
            handle.write(json_line(record))

    def append_rejections(self, step: int, rejections: Sequence[Rejection]) -> None:
        """Record rejected updates: one line each with the step, the client and the reason."""
        with (self.path / REJECTIONS_FILE).open("a") as handle:
            for rejection in rejections:
                handle.write(json_line({"step": step, "client_id": rejection.client_id, "reason": rejection.reason}))

    def drop_rejections_after(self, step: int) -> None:
        """On resume: forget rejections logged after the checkpoint, which the run will redo."""
        path = self.path / REJECTIONS_FILE
        if path.exists():
            write_jsonl(path, [r for r in read_appended_records(path, "step") if r["step"] <= step])

    def write_summary(self, summary: dict[str, Any]) -> None:
        (self.path / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")

    def write_model(self, model: nn.Module) -> None:
        tensors = {name: t.detach().contiguous() for name, t in model.state_dict().items()
                   if isinstance(t, torch.Tensor)}
        save_file(tensors, str(self.path / MODEL_FILE))


def read_appended_records(path: Path, key: str) -> list[dict[str, Any]]:
    """The records of an append-only JSONL file, each with an integer ``key``.

    A torn last line (the run was killed while appending it) is dropped; any other damage is a
    one-line :class:`~fedfleet.errors.CheckpointError` naming the file and line.
    """
    lines = path.read_bytes().decode(errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):
                break  # torn by a kill mid-write; the resumed run writes it again
            record = None
        if not (isinstance(record, dict) and type(record.get(key)) is int):
            raise CheckpointError(f"{path} line {number} is not a record with an integer {key!r}; "
                                  "delete that line or start the run again")
        records.append(record)
    return records
