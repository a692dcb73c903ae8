"""Step 1, in one place: a value that cannot be a valid characteristic becomes null (NaN).

Every column kind goes through :func:`null_invalid` after its values are read as numbers
(:func:`parse_numbers`; nominal text that is not a number keeps its spelling and is null
only when it is a missing-value token, see :func:`missing_text`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_PORT = 65535
FLOAT32_MAX = float(np.finfo(np.float32).max)
# text read as missing; "(empty)" is Zeek's empty set, left as text when a log is converted to CSV
MISSING_TEXT = frozenset({"nan", "-nan", "null", "none", "na", "n/a", "#n/a", "(empty)"})


@dataclass(frozen=True)
class InvalidRule:
    """What is invalid in one column.

    Attributes
    ----------
    enabled : bool
        Step 1 on; when off (ablation) numbers are only clipped to the float32 range and
        nominal numbers are kept as they are.
    non_negative : bool
        A negative value is impossible (a size, a duration, a protocol number).
    port : bool
        A port: valid values are the integers 0..65535.
    nominal : bool
        A nominal column's numbers (nothing is clipped when step 1 is off).
    """

    enabled: bool = True
    non_negative: bool = True
    port: bool = False
    nominal: bool = False


def null_invalid(values: np.ndarray, rule: InvalidRule) -> np.ndarray:
    """``values`` (float64) with every invalid value replaced by NaN under ``rule``.

    Invalid: ±inf and NaN; negatives where ``rule.non_negative``; for ports anything but
    an integer in 0..65535.
    """
    if not rule.enabled:
        return values if rule.nominal else np.clip(values, -FLOAT32_MAX, FLOAT32_MAX)
    invalid = ~np.isfinite(values)
    if rule.port:
        invalid |= (values < 0) | (values > MAX_PORT) | (values != np.round(values))
    elif rule.non_negative:
        invalid |= values < 0
    return np.where(invalid, np.nan, values)


def parse_numbers(column: pd.Series) -> np.ndarray:
    """Float64 values; unparsable text becomes NaN, "Infinity" becomes inf."""
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def missing_text(text: pd.Series) -> np.ndarray:
    """Where stripped text is missing: null, empty, or a token such as ``NaN``, ``null``, ``N/A``,
    ``(empty)``."""
    return np.asarray(text.isna() | (text == "") | text.str.lower().isin(MISSING_TEXT), dtype=bool)
