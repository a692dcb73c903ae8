"""Step 2: nominal values to integers; id 0 for values never seen in training, 1..K for the
K seen values in sorted order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fedfleet.traffic.preprocess.invalid import InvalidRule, missing_text, null_invalid

UNKNOWN_ID = 0  # integer given to a nominal value never seen in training


def category_strings(column: pd.Series, *, null_invalid: bool = True, non_negative: bool = True) -> pd.Series:
    """Nominal values as strings; null where the value is missing or invalid.

    Numbers, and text that parses as a number, take one canonical spelling (integral numbers
    without a trailing ``.0``: 6, 6.0 and "6.0" are all "6"), so a mapping fitted on one
    column type matches values of another. Null: missing values, empty text and missing-value
    tokens (``NaN``, ``null``, ``None``, ``NA``, ...); with ``null_invalid``, also ±inf
    (``"Infinity"`` included) and, with ``non_negative``, negative numbers (an impossible
    protocol, flag code or id such as -1).
    """
    return nominal_strings(column, InvalidRule(null_invalid, non_negative, nominal=True))


def nominal_strings(column: pd.Series, rule: InvalidRule) -> pd.Series:
    """:func:`category_strings` under an explicit step-1 rule."""
    text, numbers = _text_and_numbers(column)
    valid = null_invalid(numbers, rule)
    is_number = ~np.isnan(numbers)
    result = text.astype(object).where(~is_number, _number_strings(numbers))
    keep = pd.notna(result).to_numpy() & ~(is_number & np.isnan(valid))
    return result.where(keep, None)


def fit_categories(column: pd.Series, rule: InvalidRule) -> list[str]:
    """The sorted valid values of a nominal column: value ``i`` of the list gets id ``i + 1``."""
    return sorted(str(value) for value in nominal_strings(column, rule).dropna().unique())


def encode(column: pd.Series, categories: Sequence[str], rule: InvalidRule) -> np.ndarray:
    """Ids of a nominal column under a fitted mapping, float64: NaN for null or invalid values,
    ``UNKNOWN_ID`` for values not in ``categories``."""
    if _is_number_column(column):
        values = null_invalid(column.to_numpy(dtype="float64", na_value=np.nan), rule)
        keys = pd.to_numeric(pd.Series(list(categories), dtype="string"), errors="coerce")
        first_id = {float(key): index for index, key in reversed(list(enumerate(keys))) if pd.notna(key)}
        ids = pd.Index(list(first_id)).get_indexer(values)
        ids = np.where(ids >= 0, np.asarray(list(first_id.values()), dtype=np.int64)[ids], -1)
        null = np.isnan(values)
    else:
        text = nominal_strings(column, rule)
        ids = pd.Index(list(categories)).get_indexer(text.fillna(""))
        null = text.isna().to_numpy()
    codes = np.where(ids >= 0, ids + 1.0, float(UNKNOWN_ID))
    return np.where(null, np.nan, codes)


def _text_and_numbers(column: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Stripped text (null where missing) and the values that parse as numbers (NaN where not)."""
    if _is_number_column(column):
        return (pd.Series(pd.NA, index=column.index, dtype="string"),
                column.to_numpy(dtype="float64", na_value=np.nan))
    text = column.astype("string").str.strip()
    text = text.mask(missing_text(text))
    numbers = pd.to_numeric(text.astype(object), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return text, numbers


def _number_strings(numbers: np.ndarray) -> np.ndarray:
    """Canonical spelling of numbers: integral values as integers, others as numpy prints them."""
    integral = np.isfinite(numbers) & (numbers == np.round(numbers)) & (np.abs(numbers) < 2**53)
    text = numbers.astype(str).astype(object)
    text[integral] = numbers[integral].astype(np.int64).astype(str)
    return text


def _is_number_column(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
