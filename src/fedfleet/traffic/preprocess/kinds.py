"""Column kinds: which characteristics are numbers, which are nominal, which are ports."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import numpy as np
import pandas as pd

from fedfleet.traffic.preprocess.invalid import missing_text

ColumnKind = Literal["numeric", "categorical", "port"]
PortMode = Literal["integer", "bucket", "normalise"]
KINDS: tuple[ColumnKind, ...] = ("numeric", "categorical", "port")

REGISTERED_PORTS_START = 1024
DYNAMIC_PORTS_START = 49152


def column_kind(
    name: str,
    column: pd.Series,
    *,
    ports: Collection[str],
    categorical: Collection[str],
    port_mode: PortMode,
    encode_categorical: bool,
    numeric_threshold: float,
) -> ColumnKind | None:
    """How a column is treated; None when it is left out (text with encoding switched off).

    Ports are ports unless normalised like numbers (an ablation); a declared nominal column
    is encoded when encoding is on; any other column is numeric when at least
    ``numeric_threshold`` of its present values parse as numbers, nominal otherwise.
    """
    if name in ports:
        return "numeric" if port_mode == "normalise" else "port"
    if mostly_numeric(column, numeric_threshold):
        return "categorical" if name in categorical and encode_categorical else "numeric"
    return "categorical" if encode_categorical else None


def mostly_numeric(column: pd.Series, threshold: float) -> bool:
    """Whether at least ``threshold`` of the column's present values parse as numbers."""
    if pd.api.types.is_numeric_dtype(column):
        return True
    text = column.astype("string").str.strip()
    present = text[~missing_text(text)]
    if present.empty:
        return True
    parsed = pd.to_numeric(present.astype(object), errors="coerce").notna().mean()
    return bool(parsed >= threshold)


def port_bucket(ports: np.ndarray) -> np.ndarray:
    """Bucket ports: 0 well-known (<1024), 1 registered (<49152), 2 dynamic; NaN stays NaN."""
    buckets = np.where(ports < REGISTERED_PORTS_START, 0.0,
                       np.where(ports < DYNAMIC_PORTS_START, 1.0, 2.0))
    return np.where(np.isnan(ports), np.nan, buckets)
