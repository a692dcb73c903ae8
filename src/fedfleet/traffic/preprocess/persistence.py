"""A fitted preprocessor as plain JSON values, and back; a damaged state is one DataError."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from fedfleet.errors import DataError
from fedfleet.traffic.preprocess.kinds import ColumnKind


class PreprocessorState(BaseModel):
    """The saved form of a fitted :class:`~fedfleet.traffic.preprocess.TrafficPreprocessor`.

    Attributes
    ----------
    params : dict
        Constructor parameters (lists for sequences).
    feature_names_in : list of str
        Columns seen in ``fit``.
    kinds : dict of str to kind
        Kept columns and how each is treated, in output order.
    categories : dict of str to list of str
        Fitted mapping of each nominal column.
    offset, scale : dict of str to float
        Normalisation statistics of the normalised columns (finite; scale > 0).
    dropped : list of str
        Columns left out because every training value was null.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    params: dict[str, Any]
    feature_names_in: list[str]
    kinds: dict[str, ColumnKind]
    categories: dict[str, list[str]]
    offset: dict[str, float]
    scale: dict[str, float]
    dropped: list[str] = []

    @field_validator("offset", "scale", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        if isinstance(value, dict):  # JSON integers are floats here (strict mode would refuse them)
            return {key: float(number) if isinstance(number, int) and not isinstance(number, bool) else number
                    for key, number in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PreprocessorState:
        unknown = [name for name in (*self.kinds, *self.dropped) if name not in self.feature_names_in]
        if unknown:
            raise ValueError(f"columns {unknown} are not among feature_names_in")
        nominal = [name for name, kind in self.kinds.items() if kind == "categorical"]
        if sorted(nominal) != sorted(self.categories):
            raise ValueError("categories must list exactly the categorical columns")
        if set(self.offset) != set(self.scale) or not set(self.offset) <= set(self.kinds):
            raise ValueError("offset and scale must name the same kept columns")
        if not all(math.isfinite(v) for v in (*self.offset.values(), *self.scale.values())):
            raise ValueError("offset and scale must be finite")
        if any(v <= 0 for v in self.scale.values()):
            raise ValueError("scale must be positive")
        return self


def read_state(state: Any) -> PreprocessorState:
    """Validate a saved state.

    Raises
    ------
    DataError
        In one line, naming the first problem, for anything but a complete consistent state.
    """
    if not isinstance(state, dict):
        raise DataError(f"preprocessor state must be a JSON object, not {type(state).__name__}")
    try:
        return PreprocessorState.model_validate(state)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "state"
        raise DataError(f"preprocessor state is malformed at {where}: {first['msg']} "
                        f"({exc.error_count()} problem(s)); retrain the model") from None
