"""The traffic preprocessing: invalid values to null, nominal values to integers, normalise all
but ports.

Every flow characteristic goes through three steps, each of which can be switched off for
an ablation:

1. ``null_invalid`` — a value that is ±inf, NaN, unparsable as a number, or negative in a
   column where negatives are impossible becomes null (NaN in the output); in a nominal
   column, missing-value text ("NaN", "null", ...), ±inf and impossible negatives are null
   too, never categories;
2. ``encode_categorical`` — a non-numeric characteristic (or a declared nominal one such as
   the IP protocol) becomes an integer from a mapping fitted on the training flows;
   id 0 is reserved for values never seen in training, ids 1..K are the seen values;
3. ``normalise`` — every characteristic except ports is scaled with statistics of the
   training flows; ports stay integers, optionally bucketed into well-known (0),
   registered (1) and dynamic (2).

Nulls stay NaN in the output: the tree classifier splits on them natively and the MLP
reads them as the training mean (0 after standard scaling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from fedfleet.errors import ConfigError, DataError

PortMode = Literal["integer", "bucket", "normalise"]
Scaling = Literal["standard", "minmax", "log-standard"]
ColumnKind = Literal["numeric", "categorical", "port"]

UNKNOWN_ID = 0  # integer given to a nominal value never seen in training
MAX_PORT = 65535
REGISTERED_PORTS_START = 1024
DYNAMIC_PORTS_START = 49152
FLOAT32_MAX = float(np.finfo(np.float32).max)
MISSING_TEXT = frozenset({"nan", "-nan", "null", "none", "na", "n/a", "#n/a"})  # text read as missing


def port_bucket(ports: np.ndarray) -> np.ndarray:
    """Bucket ports: 0 well-known (<1024), 1 registered (<49152), 2 dynamic; NaN stays NaN."""
    buckets = np.where(ports < REGISTERED_PORTS_START, 0.0,
                       np.where(ports < DYNAMIC_PORTS_START, 1.0, 2.0))
    return np.where(np.isnan(ports), np.nan, buckets)


def category_strings(column: pd.Series, *, null_invalid: bool = True, non_negative: bool = True) -> pd.Series:
    """Nominal values as strings; null where the value is missing or invalid.

    Numbers, and text that parses as a number, take one canonical spelling (integral numbers
    without a trailing ``.0``: 6, 6.0 and "6.0" are all "6"), so a mapping fitted on one
    column type matches values of another. Null: missing values, empty text and missing-value
    tokens (``NaN``, ``null``, ``None``, ``NA``, ...); with ``null_invalid``, also ±inf
    (``"Infinity"`` included) and, with ``non_negative``, negative numbers (an impossible
    protocol, flag code or id such as -1).
    """
    if _is_number_column(column):
        numbers = column.to_numpy(dtype="float64", na_value=np.nan)
        text = pd.Series(pd.NA, index=column.index, dtype="string")
    else:
        text = column.astype("string").str.strip()
        text = text.mask(text.isna() | (text == "") | text.str.lower().isin(MISSING_TEXT))
        numbers = pd.to_numeric(text.astype(object), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    invalid = _invalid_nominal(numbers, null_invalid, non_negative)
    is_number = ~np.isnan(numbers)
    result = text.astype(object).where(~is_number, _number_strings(numbers))
    return result.where(~invalid & pd.notna(result).to_numpy(), None)


def _number_strings(numbers: np.ndarray) -> np.ndarray:
    """Canonical spelling of numbers: integral values as integers, others as numpy prints them."""
    integral = np.isfinite(numbers) & (numbers == np.round(numbers)) & (np.abs(numbers) < 2**53)
    text = numbers.astype(str).astype(object)
    text[integral] = numbers[integral].astype(np.int64).astype(str)
    return text


def _invalid_nominal(numbers: np.ndarray, null_invalid: bool, non_negative: bool) -> np.ndarray:
    """Nominal values that step 1 turns into nulls: ±inf, and negatives where impossible."""
    if not null_invalid:
        return np.zeros(numbers.shape, dtype=bool)
    invalid = np.isinf(numbers)
    if non_negative:
        invalid |= numbers < 0
    return invalid


def _is_number_column(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def parse_numbers(column: pd.Series) -> np.ndarray:
    """Float64 values; unparsable text becomes NaN, "Infinity" becomes inf."""
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


@dataclass(frozen=True)
class Moments:
    """Count, mean, sum of squared deviations (m2), min and max of a column's finite values.

    Moments of disjoint parts add up exactly (Chan et al.'s parallel update), so sites can
    share these instead of their flows.
    """

    count: int
    mean: float
    m2: float
    low: float
    high: float

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return cls(0, 0.0, 0.0, np.inf, -np.inf)
        mean = float(finite.mean())
        return cls(int(finite.size), mean, float(np.square(finite - mean).sum()),
                   float(finite.min()), float(finite.max()))

    def __add__(self, other: Moments) -> Moments:
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        return Moments(count, self.mean + delta * other.count / count,
                       self.m2 + other.m2 + delta * delta * self.count * other.count / count,
                       min(self.low, other.low), max(self.high, other.high))


class TrafficPreprocessor(TransformerMixin, BaseEstimator):
    """Prepare flow characteristics for a traffic classifier.

    Parameters
    ----------
    ports : sequence of str
        Port columns: never normalised; kept as integers or bucketed.
    categorical : sequence of str
        Columns encoded to integers even when they hold numbers (e.g. ``protocol``).
        Columns whose values are mostly not numbers are encoded too.
    non_negative : "all" or sequence of str
        Columns where a negative value is impossible (and so invalid); "all" means every
        numeric column and every number in a nominal column (protocol, codes, ids).
    port_mode : {"integer", "bucket", "normalise"}
        Ports as integers, as 0/1/2 buckets, or (ablation) normalised like any column.
    null_invalid : bool
        Step 1. When False (ablation) ±inf are clipped to the float32 range and negatives
        kept; unparsable text still cannot become a number and stays NaN.
    encode_categorical : bool
        Step 2. When False (ablation) non-numeric columns are dropped and declared nominal
        columns are treated as numbers.
    normalise : bool
        Step 3. When False (ablation) values are passed on unscaled.
    scaling : {"standard", "minmax", "log-standard"}
        Standard: (x - mean) / std. Minmax: (x - min) / (max - min). Log-standard:
        sign(x) log(1 + |x|), then standard; suits heavy-tailed sizes and durations.
    numeric_threshold : float
        Share of a column's non-missing values that must parse as numbers for it to count
        as numeric rather than nominal.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Columns seen in ``fit``; ``transform`` requires them all.
    kinds_ : dict of str to {"numeric", "categorical", "port"}
        How each kept column is treated.
    categories_ : dict of str to list of str
        Fitted mapping of each nominal column: value ``categories_[c][i]`` has id ``i + 1``.
    offset_, scale_ : dict of str to float
        Normalisation statistics: output = (value - offset) / scale.
    feature_names_out_ : ndarray of str
        Output columns, in order.
    """

    def __init__(
        self,
        ports: Sequence[str] = ("src_port", "dst_port"),
        categorical: Sequence[str] = (),
        non_negative: Literal["all"] | Sequence[str] = "all",
        port_mode: PortMode = "integer",
        null_invalid: bool = True,
        encode_categorical: bool = True,
        normalise: bool = True,
        scaling: Scaling = "standard",
        numeric_threshold: float = 0.9,
    ) -> None:
        self.ports = ports
        self.categorical = categorical
        self.non_negative = non_negative
        self.port_mode = port_mode
        self.null_invalid = null_invalid
        self.encode_categorical = encode_categorical
        self.normalise = normalise
        self.scaling = scaling
        self.numeric_threshold = numeric_threshold

    # -- fitting -------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any = None) -> TrafficPreprocessor:
        """Learn column kinds, nominal mappings and normalisation statistics from ``X``."""
        return self.fit_mapping(X).fit_scaling(self.column_moments(X))

    def fit_mapping(self, X: pd.DataFrame) -> TrafficPreprocessor:
        """First half of ``fit``: column kinds and nominal mappings (no scaling yet)."""
        self._check_params()
        frame = _as_frame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = len(frame.columns)
        self.kinds_ = {}
        self.categories_ = {}
        for name in frame.columns:
            kind = self._column_kind(name, frame[name])
            if kind is None:
                continue
            self.kinds_[name] = kind
            if kind == "categorical":
                seen = category_strings(frame[name], **self._nominal_rule(name)).dropna().unique()
                self.categories_[name] = sorted(str(value) for value in seen)
        self.feature_names_out_ = np.asarray(list(self.kinds_), dtype=object)
        return self

    def merge_mappings(self, parts: Sequence[TrafficPreprocessor]) -> TrafficPreprocessor:
        """Set this preprocessor's mapping to the union of ``parts``' (each ``fit_mapping``-ed
        on one site's flows): same kinds required, categories merged.

        Raises
        ------
        DataError
            When the parts saw different columns or disagree on a column's kind.
        """
        self._check_params()
        first = parts[0]
        for part in parts[1:]:
            if list(part.feature_names_in_) != list(first.feature_names_in_):
                raise DataError("sites have different flow columns; align their schemas first")
            differing = [name for name in first.kinds_ if part.kinds_.get(name) != first.kinds_[name]]
            if differing or len(part.kinds_) != len(first.kinds_):
                raise DataError(f"sites disagree on the kind of column(s) {', '.join(differing)}; "
                                "declare them in the spec's categorical list")
        self.feature_names_in_ = first.feature_names_in_
        self.n_features_in_ = first.n_features_in_
        self.kinds_ = dict(first.kinds_)
        self.categories_ = {name: sorted({value for part in parts for value in part.categories_[name]})
                            for name in first.categories_}
        self.feature_names_out_ = np.asarray(list(self.kinds_), dtype=object)
        return self

    def column_moments(self, X: pd.DataFrame) -> dict[str, Moments]:
        """Moments of each normalised column of ``X`` after steps 1 and 2 (needs the mapping)."""
        check_is_fitted(self, "kinds_")
        frame = _as_frame(X)
        return {name: Moments.of(self._characteristic(name, frame[name]))
                for name in self.kinds_ if self._is_normalised(name)}

    def fit_scaling(self, moments: dict[str, Moments]) -> TrafficPreprocessor:
        """Second half of ``fit``: normalisation statistics from (summed) column moments."""
        check_is_fitted(self, "kinds_")
        self.offset_, self.scale_ = {}, {}
        for name in self.kinds_:
            if self._is_normalised(name):
                self.offset_[name], self.scale_[name] = self._statistics(moments[name])
        return self

    def _check_params(self) -> None:
        if self.port_mode not in ("integer", "bucket", "normalise"):
            raise ConfigError(f"port_mode {self.port_mode!r} is not integer, bucket or normalise")
        if self.scaling not in ("standard", "minmax", "log-standard"):
            raise ConfigError(f"scaling {self.scaling!r} is not standard, minmax or log-standard")
        if not 0 < self.numeric_threshold <= 1:
            raise ConfigError(f"numeric_threshold must be in (0, 1], got {self.numeric_threshold}")

    def _column_kind(self, name: str, column: pd.Series) -> ColumnKind | None:
        if name in self.ports:
            return "numeric" if self.port_mode == "normalise" else "port"
        declared = name in self.categorical
        if self._mostly_numeric(column):
            return "categorical" if declared and self.encode_categorical else "numeric"
        return "categorical" if self.encode_categorical else None

    def _mostly_numeric(self, column: pd.Series) -> bool:
        if pd.api.types.is_numeric_dtype(column):
            return True
        present = category_strings(column, null_invalid=False).dropna()
        if present.empty:
            return True
        parsed = pd.to_numeric(present, errors="coerce").notna().mean()
        return bool(parsed >= self.numeric_threshold)

    def _is_normalised(self, name: str) -> bool:
        return self.normalise and self.kinds_[name] != "port"

    def _statistics(self, moments: Moments) -> tuple[float, float]:
        if moments.count == 0 or moments.low == moments.high:
            # A constant column (whose float moments may still show rounding noise) maps to 0.
            return (moments.low if moments.count else 0.0), 1.0
        if self.scaling == "minmax":
            offset, scale = moments.low, moments.high - moments.low
        else:
            offset, scale = moments.mean, float(np.sqrt(moments.m2 / moments.count))
        # A spread below float64's normal range (m2 underflows to 0) is a constant column too.
        return offset, scale if scale > 0 and np.isfinite(scale) else 1.0

    # -- transforming --------------------------------------------------------------------
    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Preprocessed characteristics, float32 of shape (n_flows, n_features_out); NaN = null.

        Raises
        ------
        DataError
            When ``X`` lacks columns seen in ``fit`` (the message lists them).
        """
        check_is_fitted(self, "kinds_")
        frame = _as_frame(X)
        missing = [name for name in self.feature_names_in_ if name not in frame.columns]
        if missing:
            raise DataError(f"flows lack column(s) the preprocessor was fitted on: {', '.join(missing)}")
        output = np.empty((len(frame), len(self.kinds_)), dtype=np.float32)
        for index, name in enumerate(self.kinds_):
            values = self._characteristic(name, frame[name])
            if name in self.offset_:
                values = (values - self.offset_[name]) / self.scale_[name]
            # an unseen value far outside the training range stays finite in float32 (NaN stays NaN)
            output[:, index] = np.clip(values, -FLOAT32_MAX, FLOAT32_MAX)
        return output

    def _characteristic(self, name: str, column: pd.Series) -> np.ndarray:
        """One column after steps 1 and 2 (and the log of log-standard scaling)."""
        kind = self.kinds_[name]
        if kind == "categorical":
            return self._encode(name, column)
        values = self._clean(name, parse_numbers(column))
        if kind == "port":
            return port_bucket(values) if self.port_mode == "bucket" else values
        if self.normalise and self.scaling == "log-standard":
            return np.sign(values) * np.log1p(np.abs(values))
        return values

    def _clean(self, name: str, values: np.ndarray) -> np.ndarray:
        if not self.null_invalid:
            return np.clip(values, -FLOAT32_MAX, FLOAT32_MAX)
        invalid = ~np.isfinite(values)
        if self.kinds_[name] == "port":
            invalid |= (values < 0) | (values > MAX_PORT) | (values != np.round(values))
        elif self.non_negative == "all" or name in self.non_negative:
            invalid |= values < 0
        return np.where(invalid, np.nan, values)

    def _nominal_rule(self, name: str) -> dict[str, bool]:
        """Step 1 for a nominal column: null ±inf, and negatives where they are impossible."""
        return {"null_invalid": self.null_invalid,
                "non_negative": self.non_negative == "all" or name in self.non_negative}

    def _encode(self, name: str, column: pd.Series) -> np.ndarray:
        categories = self.categories_[name]
        rule = self._nominal_rule(name)
        if _is_number_column(column):
            values = column.to_numpy(dtype="float64", na_value=np.nan)
            keys = pd.to_numeric(pd.Series(categories, dtype="string"), errors="coerce")
            first_id = {float(key): index
                        for index, key in reversed(list(enumerate(keys))) if pd.notna(key)}
            ids = pd.Index(list(first_id)).get_indexer(values)
            ids = np.where(ids >= 0, np.asarray(list(first_id.values()), dtype=np.int64)[ids], -1)
            null = np.isnan(values) | _invalid_nominal(values, **rule)
        else:
            text = category_strings(column, **rule)
            ids = pd.Index(categories).get_indexer(text.fillna(""))
            null = text.isna().to_numpy()
        codes = np.where(ids >= 0, ids + 1.0, float(UNKNOWN_ID))
        return np.where(null, np.nan, codes)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output column names, in order."""
        check_is_fitted(self, "kinds_")
        return np.asarray(self.feature_names_out_, dtype=object)

    # -- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state as plain JSON-able values."""
        check_is_fitted(self, "kinds_")
        params = {key: list(value) if isinstance(value, tuple) else value
                  for key, value in self.get_params().items()}
        return {
            "params": params,
            "feature_names_in": [str(name) for name in self.feature_names_in_],
            "kinds": self.kinds_,
            "categories": self.categories_,
            "offset": self.offset_,
            "scale": self.scale_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TrafficPreprocessor:
        """Rebuild a fitted preprocessor from :meth:`to_dict`'s output."""
        try:
            params: dict[str, Any] = {key: tuple(value) if isinstance(value, list) else value
                                      for key, value in state["params"].items()}
            preprocessor = cls(**params)
            preprocessor.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
            preprocessor.n_features_in_ = len(preprocessor.feature_names_in_)
            preprocessor.kinds_ = dict(state["kinds"])
            preprocessor.categories_ = {k: list(v) for k, v in state["categories"].items()}
            preprocessor.offset_ = {k: float(v) for k, v in state["offset"].items()}
            preprocessor.scale_ = {k: float(v) for k, v in state["scale"].items()}
        except (KeyError, TypeError) as exc:
            raise DataError(f"preprocessor state is incomplete or malformed ({exc})") from None
        preprocessor.feature_names_out_ = np.asarray(list(preprocessor.kinds_), dtype=object)
        return preprocessor


def _as_frame(X: Any) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"flows must be a pandas DataFrame with named columns, not {type(X).__name__}")
    return X
