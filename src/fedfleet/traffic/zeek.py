"""Zeek (Bro) TSV logs such as ``conn.log``, read directly.

A Zeek log starts with ``#`` header lines: ``#separator \\x09``, ``#set_separator``,
``#empty_field`` (``(empty)``), ``#unset_field`` (``-``), ``#path``, ``#open``, ``#fields``
(the column names) and ``#types`` (``time``, ``count``, ``port``, ``addr``, ``string``,
``bool``, ``set[string]``, ...); it may end with ``#close``. Unset and empty fields are null
here; columns of numeric types are numbers, the rest text. Gzipped logs (``.log.gz``) are
read as they are. IoT-23's labelled logs
(``conn.log.labeled``) separate their last three columns (``tunnel_parents label
detailed-label``) by runs of spaces instead of tabs; those are split too.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
from pathlib import Path
from typing import TextIO

import pandas as pd

from fedfleet.errors import DataError

ZEEK_SUFFIXES = (".log", ".labeled")
NUMERIC_TYPES = frozenset({"time", "interval", "count", "int", "double", "port"})
SPACE_RUN = re.compile(r" {2,}")


def open_text(path: Path, encoding: str) -> TextIO:
    """Open a log as text, gunzipping a ``.gz`` one (Zeek rotates logs to ``conn.*.log.gz``)."""
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding=encoding, newline="")
    return path.open(encoding=encoding, newline="")


def is_zeek_log(path: Path) -> bool:
    """Whether the file at ``path`` starts like a Zeek TSV log (``#separator``)."""
    try:
        with open_text(path, "latin-1") as handle:
            return handle.read(10) == "#separator"
    except (OSError, EOFError):
        return False


def read_zeek_log(path: Path, encoding: str | None = None) -> pd.DataFrame:
    """The rows of a Zeek TSV log as a table named by its ``#fields`` header.

    Raises
    ------
    DataError
        When the file lacks a ``#fields`` header or a row has the wrong number of fields
        (text not in ``encoding`` raises UnicodeDecodeError, which :func:`read_table` words).
    """
    header: dict[str, str] = {}
    rows: list[str] = []
    separator = "\t"
    with open_text(path, encoding or "utf-8") as handle:
        for line in handle:
            line = line.rstrip("\r\n")
            if line.startswith("#separator"):
                separator = codecs.decode(line.split(" ", 1)[1], "unicode_escape") if " " in line else "\t"
            elif line.startswith("#"):
                key, _, value = line[1:].partition(separator)
                header[key] = value
            elif line:
                rows.append(line)
    if "fields" not in header:
        raise DataError(f"{path}: a Zeek log needs a #fields header line; is it a Zeek TSV log?")
    spaced = SPACE_RUN.search(header["fields"]) is not None
    split = re.compile(re.escape(separator) + "| {2,}") if spaced else None
    fields = split.split(header["fields"]) if split else header["fields"].split(separator)
    types = split.split(header.get("types", "")) if split else header.get("types", "").split(separator)
    sep = "\t" if split else separator
    lines = [split.sub("\t", row) for row in rows] if split else rows
    for number, line in enumerate(lines, start=1):
        if line.count(sep) != len(fields) - 1:
            raise DataError(f"{path}: data row {number} has {line.count(sep) + 1} fields, "
                            f"the #fields header {len(fields)}")
    text = "\n".join(lines)
    try:
        table = pd.read_csv(io.StringIO(text), sep=sep, header=None, names=fields, dtype=str, quoting=csv.QUOTE_NONE,
                            na_values=[header.get("unset_field", "-"), header.get("empty_field", "(empty)")],
                            keep_default_na=False)
    except pd.errors.EmptyDataError:
        table = pd.DataFrame(columns=fields)
    for name, kind in zip(fields, types, strict=False):
        if kind in NUMERIC_TYPES:
            table[name] = pd.to_numeric(table[name], errors="coerce")
    return table
