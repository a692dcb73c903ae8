"""Fixtures: a small synthetic flow table made here, and the shared captures when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# public flow tables (scripts/get-public-samples.sh; docs/traffic.md)
SAMPLES_DIR = Path(os.environ.get("FEDFLEET_SAMPLES", Path.home() / ".cache" / "fedfleet" / "samples"))
PCAP_DIR = Path(os.environ.get("FEDFLEET_SHARED", REPO_ROOT.parent / "shared")) / "data" / "traffic" / "pcaps"
CLASSES = {  # label -> (dst_port, protocol, protocol name, mean bytes)
    "Web": (443, 6, "TCP", 5000.0),
    "VoIP": (5060, 17, "UDP", 800.0),
    "DNS": (53, 17, "UDP", 150.0),
}


def make_flows(rows_per_class: int = 60, seed: int = 0) -> pd.DataFrame:
    """Flows of three separable classes over six captures, with a few CICFlowMeter-style
    invalid values (inf, negative, text) sprinkled in."""
    rng = np.random.default_rng(seed)
    parts = []
    for label, (port, protocol, name, size) in CLASSES.items():
        n = rows_per_class
        parts.append(pd.DataFrame({
            "src_ip": [f"10.0.0.{i % 250}" for i in range(n)],
            "src_port": rng.integers(49152, 65535, n),
            "dst_port": np.full(n, port),
            "protocol": np.full(n, protocol),
            "proto_name": [name] * n,
            "bidirectional_bytes": rng.normal(size, size / 10, n).clip(1),
            "bidirectional_packets": rng.poisson(size / 100, n) + 1,
            "bidirectional_duration_ms": rng.exponential(size / 5, n),
            "label": [label] * n,
        }))
    flows = pd.concat(parts, ignore_index=True)
    flows["capture"] = [f"c{i % 6}.pcap" for i in range(len(flows))]
    flows.loc[0, "bidirectional_duration_ms"] = np.inf
    flows.loc[1, "bidirectional_duration_ms"] = -1.0
    return flows.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture
def flows() -> pd.DataFrame:
    return make_flows()


@pytest.fixture
def pcap_dir() -> Path:
    if not PCAP_DIR.is_dir():
        pytest.skip(f"shared captures not found at {PCAP_DIR} (set FEDFLEET_SHARED)")
    return PCAP_DIR
