"""Which flow columns are features, which are ports, which are nominal, and which must go.

A :class:`ColumnSpec` says how to read a flow table: the label column, the columns that are
never features (identifiers, addresses, timestamps, a labeller's own outputs), the port
columns and the nominal (categorical) ones. Two specs are built in, for nfstream flows and
for CICFlowMeter CSVs; any other CSV/Parquet takes a spec from a small YAML file, or,
without one, a spec guessed from common column names (:func:`guess_spec`: ports such as
``src_port``/``dport``/``*_port``; addresses, timestamps and flow ids left out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
    spec = validate_mapping(ColumnSpec, read_yaml(path))
    return spec


def infer_spec(frame: pd.DataFrame) -> ColumnSpec:
    """The built-in spec a table's columns match (nfstream, CICFlowMeter), else a spec
    guessed from the column names (:func:`guess_spec`)."""
    columns = set(frame.columns)
    if "bidirectional_packets" in columns and "src2dst_bytes" in columns:
        return NFSTREAM_SPEC
    if columns >= CIC_MARKERS:
        return CIC_SPEC
    return guess_spec(map(str, frame.columns))


# Names are compared lower-cased with spaces, dashes and dots as underscores.
PORT_NAMES = frozenset({"port", "sport", "dport", "srcport", "dstport", "sourceport", "destinationport"})
ADDRESS_SUFFIXES = ("ip", "ipv4", "ipv6", "mac", "addr", "address", "oui")
ADDRESS_NAMES = frozenset({"ip", "mac", "saddr", "daddr", "srcip", "dstip", "sourceip", "destinationip",
                           "srcaddr", "dstaddr", "ip_src", "ip_dst", "ipv4_src", "ipv4_dst", "ipv6_src",
                           "ipv6_dst", "eth_src", "eth_dst", "mac_src", "mac_dst"})
TIME_NAMES = frozenset({"timestamp", "ts", "time", "date", "datetime", "stime", "ltime", "start_time",
                        "end_time", "starttime", "endtime", "first_seen", "last_seen", "flow_start",
                        "flow_end", "start", "end"})
TIME_SUFFIXES = ("timestamp", "ts", "seen", "seen_ms", "start_time", "end_time", "datetime")
ID_NAMES = frozenset({"id", "uid", "flow_id", "flowid", "flow_key", "expiration_id", "conn_id", "session_id"})
NOMINAL_NAMES = frozenset({"protocol", "proto", "ip_proto", "ip_protocol", "l4_proto", "ip_version",
                           "protocol_type"})


def _normalised_name(name: str) -> str:
    return re.sub(r"[\s.\-]+", "_", name.strip().lower())


def _is_port(name: str) -> bool:
    return name in PORT_NAMES or name.endswith("_port")


def _is_identifier(name: str) -> bool:
    """An address, a timestamp or a flow id: never a feature."""
    if name in ADDRESS_NAMES or name in TIME_NAMES or name in ID_NAMES:
        return True
    return any(name.endswith("_" + suffix) for suffix in (*ADDRESS_SUFFIXES, *TIME_SUFFIXES))


def guess_spec(columns: Iterable[str]) -> ColumnSpec:
    """A spec for a table with no spec, from common column names (case, spaces and dashes
    ignored).

    Ports (``src_port``, ``dst_port``, ``sport``, ``dport``, ``Dst Port``, ``*_port``) stay
    integers; addresses (``src_ip``, ``*_ip``, ``*_mac``, ``*_addr``), timestamps
    (``timestamp``, ``ts``, ``*_time`` of a start or end, ``*_seen_ms``) and flow ids are
    left out; protocol and IP-version columns are nominal. Other columns are features,
    numeric or nominal by their values. A ``--spec`` file overrides all of this.
    """
    ports, exclude, categorical = [], [], []
    for column in columns:
        name = _normalised_name(column)
        if _is_port(name):
            ports.append(column)
        elif _is_identifier(name):
            exclude.append(column)
        elif name in NOMINAL_NAMES:
            categorical.append(column)
    return ColumnSpec(exclude=exclude, ports=ports, categorical=categorical)


def describe_guess(spec: ColumnSpec) -> str:
    """One line saying what :func:`guess_spec` decided, for a notice on stderr."""
    parts = [f"{role}: {', '.join(names)}" for role, names in
             (("ports (kept as integers)", spec.ports), ("left out (addresses, times, ids)", spec.exclude),
              ("nominal", spec.categorical)) if names]
    found = "; ".join(parts) if parts else "no port, address or timestamp column recognised"
    return f"no --spec given, column roles guessed from their names: {found}; pass --spec to override"
