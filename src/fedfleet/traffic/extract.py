"""Bidirectional flows with statistical features from packet captures, via nfstream (nDPI).

Each capture is checked (:func:`inspect_capture`) and then streamed through nfstream in
this process's meter; a capture that fails for any reason gives one :class:`CaptureError`
line and the others are still processed. Flows carry a ``capture`` column naming their
file, so splits and federated clients can follow capture boundaries.
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fedfleet.errors import DataError
from fedfleet.traffic.capture import inspect_capture
from fedfleet.traffic.schema import CAPTURE_COLUMN

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")


@dataclass(frozen=True)
class CaptureError:
    """A capture that could not be turned into flows, and why (one line)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Extraction:
    """Flows from several captures.

    Attributes
    ----------
    flows : pandas.DataFrame
        One row per bidirectional flow: nfstream's columns plus ``capture``.
    errors : list of CaptureError
        Captures that gave no flows.
    packets : int
        Packets in the captures that were read.
    seconds : float
        Wall-clock time spent reading and streaming (cache hits included).
    """

    flows: pd.DataFrame
    errors: list[CaptureError] = field(default_factory=list)
    packets: int = 0
    seconds: float = 0.0

    @property
    def packets_per_second(self) -> float:
        return self.packets / self.seconds if self.seconds > 0 else 0.0


def is_capture(path: str | Path) -> bool:
    """Whether ``path`` names a packet capture by its suffix."""
    return Path(path).suffix.lower() in CAPTURE_SUFFIXES


def capture_flows(path: str | Path) -> tuple[pd.DataFrame, int]:
    """Flows of one capture and its packet count.

    Raises
    ------
    DataError
        When the capture is unreadable, truncated, or nfstream decodes no flow from it.
    """
    from nfstream import NFStreamer  # optional dependency: the `traffic` extra, see extract_flows

    path = Path(path)
    info = inspect_capture(path)
    try:
        streamer = NFStreamer(source=str(path), statistical_analysis=True, n_meters=1)
        rows, columns = [], None
        for flow in streamer:
            columns = columns or flow.keys()
            rows.append(flow.values())
    except Exception as exc:  # nfstream raises bare ValueError/TypeError/OSError per file
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: nfstream failed ({message})") from None
    if not rows:
        link = ",".join(str(code) for code in info.link_types) or "none"
        raise DataError(f"{path}: no IP flows decoded from {info.packets} packets "
                        f"(link-layer type {link})")
    flows = pd.DataFrame(rows, columns=columns)
    flows[CAPTURE_COLUMN] = path.name
    return flows, info.packets


def _cache_key(path: Path) -> str:
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _cached_capture_flows(path: Path, cache_dir: Path | None) -> tuple[pd.DataFrame, int]:
    if cache_dir is None:
        return capture_flows(path)
    cached = cache_dir / f"{_cache_key(path)}.parquet"
    if cached.exists():
        flows = pd.read_parquet(cached)
        return flows, int(flows.attrs.get("packets", 0)) or inspect_capture(path).packets
    flows, packets = capture_flows(path)
    cache_dir.mkdir(parents=True, exist_ok=True)
    flows.attrs["packets"] = packets
    flows.to_parquet(cached, index=False)
    return flows, packets


def extract_flows(paths: Iterable[str | Path], cache_dir: str | Path | None = None) -> Extraction:
    """Flows of every capture in ``paths``; failing captures are listed, not fatal.

    Parameters
    ----------
    paths : iterable of paths
        pcap/pcapng files (a folder stands for the captures directly inside it).
    cache_dir : path, optional
        Folder keeping each capture's flows as Parquet, keyed by path, size and mtime,
        so a second extraction of unchanged captures skips nfstream.

    Returns
    -------
    Extraction
        The flows, the per-capture errors, packet count and time taken.

    Raises
    ------
    DataError
        When nfstream is not installed.
    """
    if importlib.util.find_spec("nfstream") is None:
        raise DataError("reading captures needs nfstream; pip install 'fedfleet[traffic]'")
    cache = Path(cache_dir) if cache_dir is not None else None
    frames: list[pd.DataFrame] = []
    extraction = Extraction(flows=pd.DataFrame())
    start = time.perf_counter()
    for path in expand_captures(paths):
        try:
            flows, packets = _cached_capture_flows(path, cache)
        except DataError as exc:
            extraction.errors.append(CaptureError(path, str(exc).removeprefix(f"{path}: ")))
            continue
        frames.append(flows)
        extraction.packets += packets
    extraction.seconds = time.perf_counter() - start
    if frames:
        extraction.flows = pd.concat(frames, ignore_index=True)
    return extraction


def expand_captures(paths: Iterable[str | Path]) -> list[Path]:
    """Each path as given, with a folder replaced by its sorted capture files."""
    expanded: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            expanded.extend(sorted(p for p in path.iterdir() if is_capture(p)))
        else:
            expanded.append(path)
    return expanded
