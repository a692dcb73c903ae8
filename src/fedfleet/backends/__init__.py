"""Execution backends for client training: sequential in this process, or over worker processes."""

import fedfleet.fl  # noqa: F401  (the engine imports these backends; loading it first keeps that cycle closed)
from fedfleet.backends.build import build_backend
from fedfleet.backends.local import LocalBackend
from fedfleet.backends.ray_backend import RayBackend, RayUnavailable
from fedfleet.backends.workers import WorkerBackend, WorkerError, resolve_workers

__all__ = ["LocalBackend", "RayBackend", "RayUnavailable", "WorkerBackend", "WorkerError", "build_backend",
           "resolve_workers"]
