"""The files of a run directory, per the public contract."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from safetensors.torch import save_file
from torch import nn

from fedfleet.config import dump_config
from fedfleet.fl.history import json_line, read_jsonl, write_jsonl
from fedfleet.fl.validation import Rejection

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.safetensors"
REJECTIONS_FILE = "rejections.jsonl"
CHECKPOINT_DIR = "checkpoint"


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
            write_jsonl(path, [r for r in read_jsonl(path) if r["step"] <= step])

    def write_summary(self, summary: dict[str, Any]) -> None:
        (self.path / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")

    def write_model(self, model: nn.Module) -> None:
        tensors = {name: t.detach().contiguous() for name, t in model.state_dict().items()
                   if isinstance(t, torch.Tensor)}
        save_file(tensors, str(self.path / MODEL_FILE))
