"""A run joins a two-node Ray cluster on this machine (``ray start --head`` and a second node), as on a real one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from fedfleet.config import load_config
from fedfleet.fl.simulation import run_simulation
from tests.backends.test_workers import without_wall_time

pytest.importorskip("ray", reason="Ray is not installed (pip install 'fedfleet[ray]')")
RAY = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_a_run_on_a_two_node_cluster_equals_the_local_run(digits_config, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a local test cluster: no token, whatever ~/.ray holds
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 characters
    head = [RAY, "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
            "--node-ip-address=127.0.0.1", f"--temp-dir={temp_dir}"]
    node = [RAY, "start", f"--address={address}", "--num-cpus=1", "--node-ip-address=127.0.0.1"]
    try:
        subprocess.run(head, check=True, capture_output=True, timeout=120)
        subprocess.run(node, check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
        pytest.skip(f"a Ray cluster cannot start on this machine: {exc}: {getattr(exc, 'stderr', '')}")
    try:
        local = run_simulation(load_config(digits_config | {"backend": {"workers": 1}}))
        on_cluster = run_simulation(load_config(
            digits_config | {"backend": {"name": "ray", "workers": 2, "address": address}}))
    finally:
        import ray

        ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
    assert without_wall_time(on_cluster.history) == without_wall_time(local.history)
    for ours, theirs in zip(on_cluster.model.parameters(), local.model.parameters(), strict=True):
        assert torch.equal(ours, theirs)
