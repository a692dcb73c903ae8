"""Flow tables from files: nfstream Parquet/CSV, CICFlowMeter CSVs, Zeek TSV logs, any
CSV/Parquet with a spec.

CICFlowMeter CSVs (CIC-IDS2017) have column names with leading spaces and cells holding
"Infinity" or "NaN"; names are stripped here and the values are left to the
preprocessor, which turns them into nulls. Some of their labels are not UTF-8 (cp1252
dashes): pass ``encoding``. Zeek logs are read by :mod:`fedfleet.traffic.zeek`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedfleet.errors import DataError
from fedfleet.traffic.extract import Extraction, extract_flows, is_capture
from fedfleet.traffic.schema import ColumnSpec, infer_spec
from fedfleet.traffic.zeek import ZEEK_SUFFIXES, is_zeek_log, read_zeek_log

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: str | Path, encoding: str | None = None) -> pd.DataFrame:
    """A CSV or Parquet flow table, or a Zeek TSV log, with column names stripped of
    surrounding spaces.

    Parameters
    ----------
    path : path
        ``.csv``, ``.parquet``/``.pq``, or a Zeek log (``.log``, ``.log.labeled``, or any file
        starting with ``#separator``); CSVs and logs may be gzipped (``.csv.gz``, ``.log.gz``).
    encoding : str, optional
        Text encoding of a CSV or log (default UTF-8), e.g. ``cp1252`` for CIC-IDS2017.

    Raises
    ------
    DataError
        When the file is missing, empty, unreadable, not in the encoding, of another kind,
        or has two columns of one name once spaces are stripped.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gz":  # conn.log.gz, flows.csv.gz: the format is the suffix before
        suffix = Path(path.stem).suffix.lower()
    zeek = suffix in ZEEK_SUFFIXES or (path.is_file() and is_zeek_log(path))
    if suffix not in TABLE_SUFFIXES and not zeek:
        raise DataError(f"{path}: not a flow table (expected .csv, .parquet or a Zeek .log)")
    try:
        if zeek:
            table = read_zeek_log(path, encoding)
        elif suffix == ".csv":
            table = pd.read_csv(path, low_memory=False, skipinitialspace=True, encoding=encoding)
        else:
            table = pd.read_parquet(path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not {encoding or 'UTF-8'} text (byte {exc.object[exc.start:exc.start + 1]!r} "
                        f"at offset {exc.start}); pass --encoding, e.g. cp1252 for CIC-IDS2017") from None
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r}; try utf-8, cp1252 or latin-1") from None
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file, no flows") from None
    except (OSError, EOFError, ValueError, pd.errors.ParserError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read flow table ({message})") from None
    table.columns = [str(name).strip() for name in table.columns]
    repeated = sorted({name for name in table.columns if list(table.columns).count(name) > 1})
    if repeated:
        raise DataError(f"{path}: column name(s) {', '.join(map(repr, repeated))} appear more than once "
                        "once surrounding spaces are stripped; rename one of each")
    return table


def read_flows(
    paths: list[str | Path],
    spec: ColumnSpec | None = None,
    cache_dir: str | Path | None = None,
    encoding: str | None = None,
) -> tuple[pd.DataFrame, ColumnSpec, Extraction | None]:
    """Flows from flow tables or from packet captures (not a mix).

    Parameters
    ----------
    paths : list of paths
        One or more CSV/Parquet tables or Zeek logs, or pcap/pcapng captures (or folders
        of them).
    spec : ColumnSpec, optional
        Column roles; None infers nfstream or CICFlowMeter from the columns, else guesses
        ports, addresses and timestamps from common column names (``guess_spec``).
    cache_dir : path, optional
        Extraction cache for captures, see :func:`extract_flows`.
    encoding : str, optional
        Text encoding of CSV tables and logs, see :func:`read_table`.

    Returns
    -------
    flows, spec, extraction
        The table, the spec used, and the extraction report when captures were read.

    Raises
    ------
    DataError
        When no flows could be read.
    """
    if not paths:
        raise DataError("no input files given")
    captures = [Path(p).is_dir() or is_capture(p) for p in paths]
    if all(captures):
        extraction = extract_flows(paths, cache_dir=cache_dir)
        if extraction.flows.empty:
            reasons = "; ".join(str(error) for error in extraction.errors[:3]) or "no captures found"
            raise DataError(f"no flows extracted ({reasons})")
        return extraction.flows, spec or infer_spec(extraction.flows), extraction
    if any(captures):
        raise DataError("give either packet captures or flow tables, not both")
    tables = [read_table(path, encoding) for path in paths]
    flows = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    if flows.empty:
        raise DataError(f"{paths[0]}: the flow table has no rows")
    return flows, spec or infer_spec(flows), None


def filter_labels(
    flows: pd.DataFrame, label: str, drop: tuple[str, ...] = (), min_flows: int = 1
) -> pd.DataFrame:
    """Flows whose label is not in ``drop`` and whose class has at least ``min_flows`` flows.

    Raises
    ------
    DataError
        When ``label`` is not a column of ``flows``.
    """
    if label not in flows.columns:
        raise DataError(f"flow table has no label column {label!r}; "
                        f"columns include {', '.join(map(str, flows.columns[:8]))}")
    kept = flows[~flows[label].astype(str).isin(drop)]
    counts = kept[label].value_counts()
    return kept[kept[label].isin(counts[counts >= min_flows].index)]
