"""Which flow columns are features, which are ports, which are nominal, and which must go.

A :class:`ColumnSpec` says how to read a flow table: the label column, the columns that are
never features (identifiers, addresses, timestamps, a labeller's own outputs), the port
columns and the nominal (categorical) ones. Two specs are built in, for nfstream flows and
for CICFlowMeter CSVs; any other CSV/Parquet takes a spec from a small YAML file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from fedfleet.config import read_yaml, validate_mapping
from fedfleet.errors import DataError

CAPTURE_COLUMN = "capture"  # the capture file a flow came from (its site, for splits and FL)

# nfstream: flow keys, addresses, absolute timestamps and everything nDPI infers.
NFSTREAM_EXCLUDED = (
    "id", "expiration_id", "src_ip", "src_mac", "src_oui", "dst_ip", "dst_mac", "dst_oui",
    "bidirectional_first_seen_ms", "bidirectional_last_seen_ms",
    "src2dst_first_seen_ms", "src2dst_last_seen_ms",
    "dst2src_first_seen_ms", "dst2src_last_seen_ms",
    "application_name", "application_category_name", "application_is_guessed",
    "application_confidence", "requested_server_name", "client_fingerprint",
    "server_fingerprint", "user_agent", "content_type",
)  # fmt: skip
NFSTREAM_LABEL = "application_category_name"

# CICFlowMeter (CIC-IDS2017 spelling, leading spaces stripped): identifiers and addresses.
CIC_EXCLUDED = ("Flow ID", "Source IP", "Destination IP", "Timestamp")
CIC_MARKERS = frozenset({"Flow Duration", "Total Fwd Packets", "Flow IAT Mean"})


class ColumnSpec(BaseModel):
    """How to read a flow table.

    Attributes
    ----------
    label : str or None
        Column holding the traffic type; None when only classifying.
    features : list of str or None
        The feature columns; None takes every column that is not the label, not excluded
        and not the capture column.
    exclude : list of str
        Columns that are never features.
    ports : list of str
        Port columns: kept as integers (optionally bucketed), never normalised.
    categorical : list of str
        Nominal columns encoded to integers even when they hold numbers (e.g. protocol).
    """

    model_config = ConfigDict(extra="forbid")

    label: str | None = None
    features: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    ports: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)

    def with_label(self, label: str | None) -> ColumnSpec:
        """This spec with ``label`` as the label column (unchanged when None)."""
        return self if label is None else self.model_copy(update={"label": label})

    def feature_columns(self, columns: list[str]) -> list[str]:
        """The feature columns of a table with ``columns``, in table order.

        Raises
        ------
        DataError
            When a listed feature or the label is missing from the table.
        """
        required = list(self.features or []) + ([self.label] if self.label else [])
        missing = [name for name in required if name not in columns]
        if missing:
            raise DataError(f"flow table lacks required column(s) {', '.join(missing)}; "
                            "check the column spec or the --label name")
        if self.features is not None:
            return list(self.features)
        dropped = {*self.exclude, CAPTURE_COLUMN, self.label}
        return [name for name in columns if name not in dropped]


NFSTREAM_SPEC = ColumnSpec(
    label=NFSTREAM_LABEL,
    exclude=list(NFSTREAM_EXCLUDED),
    ports=["src_port", "dst_port"],
    categorical=["protocol", "ip_version"],
)
CIC_SPEC = ColumnSpec(
    label="Label",
    exclude=list(CIC_EXCLUDED),
    ports=["Source Port", "Destination Port"],
    categorical=["Protocol"],
)


def read_spec(path: str | Path) -> ColumnSpec:
    """Read a :class:`ColumnSpec` from YAML; unknown keys are a one-line ConfigError."""
    spec: ColumnSpec = validate_mapping(ColumnSpec, read_yaml(path))  # type: ignore[arg-type]
    return spec


def infer_spec(frame: pd.DataFrame) -> ColumnSpec:
    """The built-in spec a table's columns match: nfstream, CICFlowMeter, or a bare one."""
    columns = set(frame.columns)
    if "bidirectional_packets" in columns and "src2dst_bytes" in columns:
        return NFSTREAM_SPEC
    if columns >= CIC_MARKERS:
        return CIC_SPEC
    return ColumnSpec()
