"""Metrics records and the run summary computed from them."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def summarise(records: Sequence[dict[str, Any]], target_accuracy: float | None) -> dict[str, Any]:
    """``final_accuracy``, ``best_accuracy``, times and ``time_to_target_s`` from metric records."""
    if not records:
        return {"final_accuracy": None, "best_accuracy": None, "virtual_time_s": 0.0,
                "wall_time_s": 0.0, "time_to_target_s": None}
    last = records[-1]
    reached = [r["virtual_time_s"] for r in records
               if target_accuracy is not None and r["test_accuracy"] >= target_accuracy]
    return {
        "final_accuracy": last["test_accuracy"],
        "best_accuracy": max(r["test_accuracy"] for r in records),
        "virtual_time_s": last["virtual_time_s"],
        "wall_time_s": last["wall_time_s"],
        "time_to_target_s": reached[0] if reached else None,
        "updates_accepted": last["updates_accepted"],
        "updates_rejected": last["updates_rejected"],
        "bytes_up": last["bytes_up"],
        "bytes_down": last["bytes_down"],
    }


def json_line(record: dict[str, Any]) -> str:
    """One strict-JSON line: a NaN or infinite float (a diverged loss) is written as null."""
    clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
    return json.dumps(clean, allow_nan=False) + "\n"


def write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Write one JSON object per line."""
    path.write_text("".join(json_line(r) for r in records))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a metrics.jsonl file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
