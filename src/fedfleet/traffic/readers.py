"""Flow tables from files: nfstream Parquet/CSV, CICFlowMeter CSVs, any CSV/Parquet with a spec.

CICFlowMeter CSVs (CIC-IDS2017) have column names with leading spaces and cells holding
"Infinity" or "NaN"; names are stripped here and the values are left to the
preprocessor, which turns them into nulls.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedfleet.errors import DataError
from fedfleet.traffic.extract import Extraction, extract_flows, is_capture
from fedfleet.traffic.schema import ColumnSpec, infer_spec

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV or Parquet flow table with column names stripped of surrounding spaces.

    Raises
    ------
    DataError
        When the file is missing, empty, unreadable or of another kind.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: not a flow table (expected .csv or .parquet)")
    try:
        if suffix == ".csv":
            table = pd.read_csv(path, low_memory=False, skipinitialspace=True)
        else:
            table = pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file, no flows") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read flow table ({message})") from None
    table.columns = [str(name).strip() for name in table.columns]
    return table


def read_flows(
    paths: list[str | Path], spec: ColumnSpec | None = None, cache_dir: str | Path | None = None
) -> tuple[pd.DataFrame, ColumnSpec, Extraction | None]:
    """Flows from flow tables or from packet captures (not a mix).

    Parameters
    ----------
    paths : list of paths
        One or more CSV/Parquet tables, or pcap/pcapng captures (or folders of them).
    spec : ColumnSpec, optional
        Column roles; None infers nfstream or CICFlowMeter from the columns, else guesses
        ports, addresses and timestamps from common column names (``guess_spec``).
    cache_dir : path, optional
        Extraction cache for captures, see :func:`extract_flows`.

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
    tables = [read_table(path) for path in paths]
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
