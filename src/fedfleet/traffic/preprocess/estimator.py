"""The preprocessing estimator: steps 1-3 fitted on training flows (or on sites' summaries)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from fedfleet.errors import ConfigError, DataError
from fedfleet.traffic.preprocess.encoding import encode, fit_categories
from fedfleet.traffic.preprocess.invalid import FLOAT32_MAX, InvalidRule, null_invalid, parse_numbers
from fedfleet.traffic.preprocess.kinds import ColumnKind, PortMode, column_kind, port_bucket
from fedfleet.traffic.preprocess.merging import SiteMapping, merge_site_mappings
from fedfleet.traffic.preprocess.persistence import read_state
from fedfleet.traffic.preprocess.scaling import SCALINGS, Moments, Scaling, prescale, statistics


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
        Step 3. When False values are passed on unscaled, at full float64 resolution: the
        right input for trees, which only compare values (scaling can merge distinct values,
        and one huge value squeezes the rest of its column together).
    scaling : {"standard", "minmax", "log-standard"}
        Standard: (x - mean) / std. Minmax: (x - min) / (max - min). Log-standard:
        sign(x) log(1 + |x|), then standard; suits heavy-tailed sizes and durations and is
        robust to a few huge values.
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
    dropped_ : list of str
        Columns left out because every training value was null (or invalid).
    feature_names_out_ : ndarray of str
        Output columns, in order.
    """

    feature_names_in_: np.ndarray
    n_features_in_: int
    kinds_: dict[str, ColumnKind]
    categories_: dict[str, list[str]]
    offset_: dict[str, float]
    scale_: dict[str, float]
    dropped_: list[str]
    feature_names_out_: np.ndarray

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
        kinds: dict[str, ColumnKind] = {}
        categories: dict[str, list[str]] = {}
        for name in frame.columns:
            kind = column_kind(name, frame[name], ports=self.ports, categorical=self.categorical,
                               port_mode=self.port_mode, encode_categorical=self.encode_categorical,
                               numeric_threshold=self.numeric_threshold)
            if kind is not None:
                kinds[name] = kind
            if kind == "categorical":
                categories[name] = fit_categories(frame[name], self._rule(name, kind))
        return self._set_mapping(SiteMapping(list(frame.columns), kinds, categories))

    def merge_mappings(self, parts: Sequence[TrafficPreprocessor]) -> TrafficPreprocessor:
        """Set this preprocessor's mapping to the union of ``parts``' (each ``fit_mapping``-ed
        on one site's flows): same kinds required, categories merged.

        Raises
        ------
        DataError
            When the parts saw different columns or disagree on a column's kind.
        """
        self._check_params()
        return self._set_mapping(merge_site_mappings([part._mapping() for part in parts]))

    def column_moments(self, X: pd.DataFrame) -> dict[str, Moments]:
        """Moments of each normalised column of ``X`` after steps 1 and 2 (needs the mapping),
        and the count of valid values of every other column, which says whether it holds any
        value at all."""
        check_is_fitted(self, "kinds_")
        frame = _as_frame(X)
        return {name: (Moments.of if self._is_normalised(name) else Moments.count_of)(
                    self._characteristic(name, frame[name])) for name in self.kinds_}

    def fit_scaling(self, moments: dict[str, Moments]) -> TrafficPreprocessor:
        """Second half of ``fit``: drop the columns without a single valid value, then the
        normalisation statistics from (summed) column moments.

        Raises
        ------
        DataError
            When no column holds a valid value.
        """
        check_is_fitted(self, "kinds_")
        empty = [name for name in self.kinds_ if name in moments and moments[name].count == 0]
        if empty and len(empty) == len(self.kinds_):
            raise DataError(f"every feature column is empty or invalid ({', '.join(empty[:5])}); "
                            "no characteristic to learn from")
        self.dropped_ = self.dropped_ + empty
        self.kinds_ = {name: kind for name, kind in self.kinds_.items() if name not in empty}
        self.categories_ = {name: values for name, values in self.categories_.items() if name not in empty}
        self.feature_names_out_ = np.asarray(list(self.kinds_), dtype=object)
        self.offset_, self.scale_ = {}, {}
        for name in self.kinds_:
            if self._is_normalised(name):
                self.offset_[name], self.scale_[name] = statistics(moments[name], self.scaling)
        return self

    def _mapping(self) -> SiteMapping:
        check_is_fitted(self, "kinds_")
        return SiteMapping(list(self.feature_names_in_), dict(self.kinds_), dict(self.categories_))

    def _set_mapping(self, mapping: SiteMapping) -> TrafficPreprocessor:
        self.feature_names_in_ = np.asarray(mapping.columns, dtype=object)
        self.n_features_in_ = len(mapping.columns)
        self.kinds_ = dict(mapping.kinds)
        self.categories_ = {name: list(values) for name, values in mapping.categories.items()}
        self.dropped_ = []
        self.feature_names_out_ = np.asarray(list(self.kinds_), dtype=object)
        return self

    def _check_params(self) -> None:
        if self.port_mode not in ("integer", "bucket", "normalise"):
            raise ConfigError(f"port_mode {self.port_mode!r} is not integer, bucket or normalise")
        if self.scaling not in SCALINGS:
            raise ConfigError(f"scaling {self.scaling!r} is not standard, minmax or log-standard")
        if not 0 < self.numeric_threshold <= 1:
            raise ConfigError(f"numeric_threshold must be in (0, 1], got {self.numeric_threshold}")

    def _is_normalised(self, name: str) -> bool:
        return self.normalise and self.kinds_[name] != "port"

    def _rule(self, name: str, kind: ColumnKind) -> InvalidRule:
        """Step 1's rule for a column of ``kind``."""
        return InvalidRule(enabled=self.null_invalid,
                           non_negative=self.non_negative == "all" or name in self.non_negative,
                           port=kind == "port", nominal=kind == "categorical")

    # -- transforming --------------------------------------------------------------------
    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Preprocessed characteristics, float64 of shape (n_flows, n_features_out); NaN = null.

        Values stay within the float32 range (an MLP reads them as float32); unscaled
        columns keep every distinct value distinct.

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
        output = np.empty((len(frame), len(self.kinds_)), dtype=np.float64)
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
        rule = self._rule(name, kind)
        if kind == "categorical":
            return encode(column, self.categories_[name], rule)
        values = null_invalid(parse_numbers(column), rule)
        if kind == "port":
            return port_bucket(values) if self.port_mode == "bucket" else values
        return prescale(values, self.scaling) if self.normalise else values

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
            "dropped": list(self.dropped_),
        }

    @classmethod
    def from_dict(cls, state: Any) -> TrafficPreprocessor:
        """Rebuild a fitted preprocessor from :meth:`to_dict`'s output.

        Raises
        ------
        DataError
            In one line for any state :meth:`to_dict` could not have written (missing or
            unknown keys, wrong types, non-finite statistics, unknown parameters).
        """
        saved = read_state(state)
        params: dict[str, Any] = {key: tuple(value) if isinstance(value, list) else value
                                  for key, value in saved.params.items()}
        try:
            preprocessor = cls(**params)
            preprocessor._check_params()
        except (TypeError, ConfigError) as exc:
            raise DataError(f"preprocessor state has bad parameters ({exc}); retrain the model") from None
        preprocessor._set_mapping(SiteMapping(saved.feature_names_in, saved.kinds, saved.categories))
        preprocessor.dropped_ = list(saved.dropped)
        preprocessor.offset_ = dict(saved.offset)
        preprocessor.scale_ = dict(saved.scale)
        missing = [name for name in preprocessor.kinds_ if preprocessor._is_normalised(name)
                   and name not in preprocessor.offset_]
        if missing:
            raise DataError(f"preprocessor state lacks statistics of {', '.join(missing)}; retrain the model")
        return preprocessor


def _as_frame(X: Any) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"flows must be a pandas DataFrame with named columns, not {type(X).__name__}")
    return X
