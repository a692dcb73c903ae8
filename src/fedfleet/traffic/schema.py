"""Which flow columns are features, which are ports, which are nominal, and which must go.

A :class:`ColumnSpec` says how to read a flow table: the label column, the other label
columns (never features), the columns that are never features (identifiers, addresses,
timestamps, a labeller's own outputs), the port columns and the nominal (categorical) ones.
Two specs are built in, for nfstream flows and for CICFlowMeter CSVs; any other table takes a
spec from a small YAML file, or, without one, a spec guessed from common column names
(:func:`guess_spec`), which knows the spellings of CICFlowMeter (2017 and 2018), UNSW-NB15,
Zeek conn.log, nfdump/NetFlow (NF-* tables) and nfstream: ports such as ``src_port``,
``id.orig_p``, ``sport``/``dsport``, ``sp``/``dp``, ``Dst Port``; addresses
(``id.orig_h``, ``sa``/``da``, ``srcip``, ``Src IP``), timestamps (``ts``, ``te``,
``stime``, ``FLOW_START_MILLISECONDS``), row ids (``uid``, ``Flow ID``, ``pkSeqID``,
``seq``) and label columns (``Label``, ``detailed-label``, ``attack_cat``, ``Attack``,
``category``). Addresses are never features by default: they identify the capture's hosts,
not the traffic type, and inflate accuracy on flows from the same capture.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

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
    labels : list of str
        Label-like columns (e.g. ``Label`` and ``attack_cat``): whichever is not the label
        is never a feature (it would give the answer away).
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
    labels: list[str] = Field(default_factory=list)
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
        dropped = {*self.exclude, *self.labels, CAPTURE_COLUMN, self.label}
        return [name for name in columns if name not in dropped]

    def key_columns(self, columns: list[str]) -> list[str]:
        """The columns of a table with ``columns`` that identify a flow, in table order: the
        capture, row ids, addresses, ports and timestamps (for predictions, never features)."""
        return [name for name in columns if name == CAPTURE_COLUMN or name in self.ports
                or column_role(name) in KEY_ROLES]


NFSTREAM_SPEC = ColumnSpec(
    label=NFSTREAM_LABEL,
    exclude=list(NFSTREAM_EXCLUDED),
    ports=["src_port", "dst_port"],
    categorical=["protocol", "ip_version"],
)
CIC_SPEC = ColumnSpec(
    label="Label",
    labels=["Label", "Attempted Category"],
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
    guessed from the column names (:func:`guess_spec`). A CICFlowMeter table with more
    roles than the built-in spec names (a saved index ``Unnamed: 0``, ``Src IP`` of the 2018
    spelling) gets those too."""
    columns = set(frame.columns)
    if "bidirectional_packets" in columns and "src2dst_bytes" in columns:
        return NFSTREAM_SPEC
    if columns >= CIC_MARKERS:
        return _with_roles(CIC_SPEC, guess_spec(map(str, frame.columns)))
    return guess_spec(map(str, frame.columns))


def _with_roles(spec: ColumnSpec, extra: ColumnSpec) -> ColumnSpec:
    """``spec`` plus the exclusions, ports, nominal and label columns ``extra`` adds (the same
    object when it adds none)."""
    update = {role: [*getattr(spec, role), *(name for name in getattr(extra, role) if name not in getattr(spec, role))]
              for role in ("exclude", "ports", "categorical", "labels")}
    changed = {role: names for role, names in update.items() if names != getattr(spec, role)}
    return spec.model_copy(update=changed) if changed else spec


# Names are compared lower-cased with spaces, dashes and dots as underscores.
PORT_NAMES = frozenset({"port", "sport", "dport", "dsport", "sp", "dp", "srcport", "dstport", "sourceport",
                        "destinationport", "id_orig_p", "id_resp_p"})
ADDRESS_SUFFIXES = ("ip", "ipv4", "ipv6", "mac", "addr", "address", "oui")
ADDRESS_NAMES = frozenset({"ip", "mac", "sa", "da", "saddr", "daddr", "srcip", "dstip", "sourceip",
                           "destinationip", "srcaddr", "dstaddr", "ip_src", "ip_dst", "ipv4_src", "ipv4_dst",
                           "ipv6_src", "ipv6_dst", "eth_src", "eth_dst", "mac_src", "mac_dst", "id_orig_h",
                           "id_resp_h", "smac", "dmac"})
TIME_NAMES = frozenset({"timestamp", "ts", "te", "time", "date", "datetime", "stime", "ltime", "start_time",
                        "end_time", "starttime", "endtime", "first_seen", "last_seen", "flow_start",
                        "flow_end", "start", "end", "flow_start_milliseconds", "flow_end_milliseconds",
                        "first_switched", "last_switched"})
TIME_SUFFIXES = ("timestamp", "ts", "seen", "seen_ms", "start_time", "end_time", "datetime")
ID_NAMES = frozenset({"id", "uid", "flow_id", "flowid", "flow_key", "expiration_id", "conn_id", "session_id",
                      "pkseqid", "seq", "index"})
UNNAMED_INDEX = re.compile(r"^unnamed:?_\d+$")  # a row index pandas wrote as a column
LABEL_NAMES = frozenset({"label", "labels", "detailed_label", "attack_cat", "attack", "category",
                         "subcategory", "attack_category", "attempted_category", "attack_type", "class",
                         "application_name", "application_category_name"})
NOMINAL_NAMES = frozenset({"protocol", "proto", "pr", "ip_proto", "ip_protocol", "l4_proto", "l7_proto",
                           "ip_version", "protocol_type"})
Role = Literal["port", "address", "time", "id", "label", "nominal"]
KEY_ROLES: frozenset[Role] = frozenset({"port", "address", "time", "id"})


def _normalised_name(name: str) -> str:
    return re.sub(r"[\s.\-]+", "_", name.strip().lower())


MANGLED_DUPLICATE = re.compile(r"^(.+)\.\d+$")  # pandas' name for a repeated CSV column: "Label.1"


def column_role(column: str) -> Role | None:
    """The role a column's name gives it (case, spaces, dots and dashes ignored), or None for
    an ordinary characteristic. A repeated CSV column that pandas renamed (``Label.1``)
    has the role of the name it repeats."""
    repeated = MANGLED_DUPLICATE.match(column.strip())
    if repeated and (role := column_role(repeated.group(1))) is not None:
        return role
    name = _normalised_name(column)
    if name in PORT_NAMES or name.endswith("_port"):
        return "port"
    if name in ADDRESS_NAMES or name.endswith(tuple("_" + suffix for suffix in ADDRESS_SUFFIXES)):
        return "address"
    if name in TIME_NAMES or name.endswith(tuple("_" + suffix for suffix in TIME_SUFFIXES)):
        return "time"
    if name in ID_NAMES or UNNAMED_INDEX.match(name):
        return "id"
    if name in LABEL_NAMES:
        return "label"
    if name in NOMINAL_NAMES:
        return "nominal"
    return None


def guess_spec(columns: Iterable[str]) -> ColumnSpec:
    """A spec for a table with no spec, from common column names (:func:`column_role`).

    Ports (``src_port``, ``id.orig_p``, ``sport``, ``dsport``, ``sp``, ``Dst Port``,
    ``*_port``) stay integers; addresses (``src_ip``, ``id.orig_h``, ``sa``, ``*_ip``,
    ``*_mac``, ``*_addr``), timestamps (``timestamp``, ``ts``, ``te``, ``stime``,
    ``FLOW_START_MILLISECONDS``, ``*_seen_ms``) and row ids (``Flow ID``, ``uid``,
    ``pkSeqID``, ``seq``) are left out; label columns (``label``, ``detailed-label``,
    ``attack_cat``, ``Attack``, ``category``) are features never, whichever is the label;
    protocol and IP-version columns are nominal. Other columns are features, numeric or
    nominal by their values. A ``--spec`` file overrides all of this.
    """
    roles: dict[Role, list[str]] = {"port": [], "address": [], "time": [], "id": [], "label": [], "nominal": []}
    exclude = []
    for column in columns:
        role = column_role(column)
        if role in ("address", "time", "id"):
            exclude.append(column)
        elif role is not None:
            roles[role].append(column)
    return ColumnSpec(exclude=exclude, ports=roles["port"], categorical=roles["nominal"], labels=roles["label"])


def describe_guess(spec: ColumnSpec) -> str:
    """One line saying what :func:`guess_spec` decided, for a notice on stderr."""
    parts = [f"{role}: {', '.join(names)}" for role, names in
             (("ports (kept as integers)", spec.ports), ("left out (addresses, times, ids)", spec.exclude),
              ("label columns (never features)", spec.labels), ("nominal", spec.categorical)) if names]
    found = "; ".join(parts) if parts else "no port, address or timestamp column recognised"
    return f"no --spec given, column roles guessed from their names: {found}; pass --spec to override"
